//! What a pipeline written in Python sees: the official `grpcio` client, with
//! `grpcio-reflection` (which speaks grpc.reflection.v1alpha) and `grpcio-health-checking`,
//! finds the services by reflection, checks health and calls the API with gzip, against the
//! service on 127.0.0.1:0 (tests/clients/python_client.py). scripts/test installs the clients
//! (scripts/fetch-test-clients).

use std::path::Path;

use crate::helpers::*;

/// The Python of the clients' virtual environment.
fn python() -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".cache/python-clients/bin/python");
    assert!(
        python.is_file(),
        "no Python gRPC clients at {}: run scripts/fetch-test-clients (scripts/test does)",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_finds_calls_and_compresses() {
    let python = python();
    let app = spawn_plumbing_app().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/python_client.py");
    let addr = app.addr().to_string();
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(&addr)
        .output()
        .await
        .expect("python runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the Python client failed:\n{stderr}");
    let seen: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the client prints one JSON object");
    assert_eq!(seen["health"], "SERVING", "{seen}");
    let services: Vec<&str> = seen["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for service in pertinent::grpc::SERVICE_NAMES {
        assert!(
            services.contains(&service),
            "{service} not listed: {services:?}"
        );
    }
    assert_eq!(seen["signals_added"], 1, "{seen}");
    assert!(
        seen["score"]
            .as_f64()
            .is_some_and(|s| (0.0..=1.0).contains(&s)),
        "{seen}"
    );
    assert!(
        ["DECISION_SEND", "DECISION_REVIEW", "DECISION_REJECT"]
            .contains(&seen["decision"].as_str().unwrap_or("")),
        "{seen}"
    );
    assert_eq!(seen["unknown_prospect"], "NOT_FOUND", "{seen}");
}

#[tokio::test]
async fn requests_and_answers_may_be_gzip_or_zstd() {
    use tonic::codec::CompressionEncoding;
    let app = spawn_plumbing_app().await;
    upsert(
        &app,
        "t",
        prospect("ana", "Ana Ruiz", "Northwind", "VP Operations"),
    )
    .await;
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut client = app
            .prospects()
            .send_compressed(encoding)
            .accept_compressed(encoding);
        let answer = client
            .get_prospect(pertinent::grpc::pb::GetProspectRequest {
                tenant: "t".into(),
                id: "ana".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
        let sent = answer
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(
            sent.as_deref(),
            Some(encoding.to_string().as_str()),
            "{encoding:?}"
        );
        assert_eq!(answer.into_inner().name, "Ana Ruiz");
    }
}
