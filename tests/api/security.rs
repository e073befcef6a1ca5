//! API keys over gRPC (issue 12): every role against every RPC for its own and another tenant,
//! refusals that carry no data, keys added and revoked while the service runs, and the rule
//! that a service without keys listens on loopback only.

use std::path::Path;
use std::time::Duration;

use pertinent::auth::Role;
use pertinent::grpc::pb;
use pertinent::grpc::pb::content_service_client::ContentServiceClient;
use pertinent::grpc::pb::gate_service_client::GateServiceClient;
use pertinent::grpc::pb::prospect_service_client::ProspectServiceClient;
use pertinent::grpc::pb::scoring_service_client::ScoringServiceClient;
use tonic::{Code, Request, Status};

use crate::child::Child;
use crate::helpers::*;

/// Runs `pertinent keys ...` (the real operator command) and returns its stdout.
fn keys_command(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pertinent"))
        .arg("keys")
        .args(args)
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "pertinent keys {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Adds a key with `pertinent keys add` and returns its secret (the one line it prints).
fn add_key(file: &Path, id: &str, tenants: &str, role: &str) -> String {
    let printed = keys_command(&[
        "add",
        "--file",
        file.to_str().unwrap(),
        "--id",
        id,
        "--tenants",
        tenants,
        "--role",
        role,
    ]);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "the secret alone on one line: {printed:?}");
    lines[0].to_owned()
}

fn keyed<T>(message: T, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    request
}

/// Every RPC, with the role its table names; a recorded Check needs write, a dry run read.
const RPCS: [(&str, Role); 19] = [
    ("ProspectService/UpsertProspect", Role::Write),
    ("ProspectService/GetProspect", Role::Read),
    ("ProspectService/DeleteProspect", Role::Admin),
    ("ProspectService/AddSignals", Role::Write),
    ("ProspectService/DeleteSignals", Role::Admin),
    ("ContentService/RegisterContent", Role::Write),
    ("ContentService/GetContent", Role::Read),
    ("ContentService/DeleteContent", Role::Admin),
    ("ScoringService/Score", Role::Read),
    ("ScoringService/Rank", Role::Read),
    ("ScoringService/FindAudience", Role::Read),
    ("GateService/Check (dry run)", Role::Read),
    ("GateService/Check", Role::Write),
    ("GateService/RecordEngagement", Role::Write),
    ("GateService/History", Role::Read),
    ("GateService/RecordSend", Role::Write),
    ("GateService/LiftSuppression", Role::Admin),
    ("GateService/SetPolicy", Role::Admin),
    ("GateService/GetPolicy", Role::Read),
];

/// One call of `rpc` for `tenant`. Destructive calls name ids that do not exist, so that the
/// matrix erases nothing it needs.
async fn call(
    ch: &tonic::transport::Channel,
    rpc: &str,
    tenant: &str,
    key: Option<&str>,
) -> Result<(), Status> {
    let t = || tenant.to_string();
    let ch = ch.clone();
    let (mut prospects, mut content) = (
        ProspectServiceClient::new(ch.clone()),
        ContentServiceClient::new(ch.clone()),
    );
    let (mut scoring, mut gate) = (
        ScoringServiceClient::new(ch.clone()),
        GateServiceClient::new(ch),
    );
    let check = |dry_run: bool, send: &str| pb::CheckRequest {
        tenant: t(),
        prospect_id: "ana".into(),
        candidate: by_content("guide"),
        send_id: send.into(),
        channel: "email".into(),
        planned_at: None,
        dry_run,
    };
    match rpc {
        "ProspectService/UpsertProspect" => prospects
            .upsert_prospect(keyed(
                pb::UpsertProspectRequest {
                    tenant: t(),
                    prospect: Some(prospect("matrix", "Mat Rix", "Matrix Co", "CTO")),
                },
                key,
            ))
            .await
            .map(drop),
        "ProspectService/GetProspect" => prospects
            .get_prospect(keyed(
                pb::GetProspectRequest {
                    tenant: t(),
                    id: "ana".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "ProspectService/DeleteProspect" => prospects
            .delete_prospect(keyed(
                pb::DeleteProspectRequest {
                    tenant: t(),
                    id: "nobody".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "ProspectService/AddSignals" => prospects
            .add_signals(keyed(
                pb::AddSignalsRequest {
                    tenant: t(),
                    prospect_id: "ana".into(),
                    signals: vec![signal(
                        "m1",
                        pb::SignalSource::CallNote,
                        "We review warehouse slotting weekly.",
                    )],
                },
                key,
            ))
            .await
            .map(drop),
        "ProspectService/DeleteSignals" => prospects
            .delete_signals(keyed(
                pb::DeleteSignalsRequest {
                    tenant: t(),
                    prospect_id: "ana".into(),
                    ids: vec!["no-such-signal".into()],
                },
                key,
            ))
            .await
            .map(drop),
        "ContentService/RegisterContent" => content
            .register_content(keyed(
                pb::RegisterContentRequest {
                    tenant: t(),
                    content: Some(content_piece(
                        "matrix-piece",
                        pb::ContentKind::BlogPost,
                        "Slotting",
                        "Re-slot weekly.",
                    )),
                },
                key,
            ))
            .await
            .map(drop),
        "ContentService/GetContent" => content
            .get_content(keyed(
                pb::GetContentRequest {
                    tenant: t(),
                    id: "guide".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "ContentService/DeleteContent" => content
            .delete_content(keyed(
                pb::DeleteContentRequest {
                    tenant: t(),
                    id: "nothing".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "ScoringService/Score" => scoring
            .score(keyed(
                pb::ScoreRequest {
                    tenant: t(),
                    prospect_id: "ana".into(),
                    candidate: by_content("guide"),
                },
                key,
            ))
            .await
            .map(drop),
        "ScoringService/Rank" => scoring
            .rank(keyed(
                pb::RankRequest {
                    tenant: t(),
                    prospect_id: "ana".into(),
                    candidates: vec![by_content("guide").unwrap()],
                    top_k: 1,
                },
                key,
            ))
            .await
            .map(drop),
        "ScoringService/FindAudience" => scoring
            .find_audience(keyed(
                pb::FindAudienceRequest {
                    tenant: t(),
                    candidate: by_content("guide"),
                    limit: 3,
                },
                key,
            ))
            .await
            .map(drop),
        "GateService/Check (dry run)" => {
            gate.check(keyed(check(true, "m-dry"), key)).await.map(drop)
        }
        "GateService/Check" => gate
            .check(keyed(check(false, "m-send"), key))
            .await
            .map(drop),
        "GateService/RecordEngagement" => gate
            .record_engagement(keyed(
                pb::EngagementRequest {
                    tenant: t(),
                    prospect_id: "ana".into(),
                    send_id: "m-send".into(),
                    kind: pb::EngagementKind::Opened as i32,
                    at: None,
                    text: String::new(),
                },
                key,
            ))
            .await
            .map(drop),
        "GateService/History" => gate
            .history(keyed(
                pb::HistoryRequest {
                    tenant: t(),
                    prospect_id: "ana".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "GateService/RecordSend" => gate
            .record_send(keyed(
                pb::RecordSendRequest {
                    tenant: t(),
                    prospect_id: "ana".into(),
                    send_id: "m-other-tool".into(),
                    candidate: by_content("guide"),
                    decision_id: String::new(),
                    channel: "email".into(),
                    sent_at: None,
                },
                key,
            ))
            .await
            .map(drop),
        "GateService/LiftSuppression" => gate
            .lift_suppression(keyed(
                pb::LiftSuppressionRequest {
                    tenant: t(),
                    prospect_id: "nobody".into(),
                },
                key,
            ))
            .await
            .map(drop),
        "GateService/SetPolicy" => gate
            .set_policy(keyed(
                pb::SetPolicyRequest {
                    tenant: t(),
                    policy: Some(pb::Policy {
                        max_sends: 5,
                        ..Default::default()
                    }),
                },
                key,
            ))
            .await
            .map(drop),
        "GateService/GetPolicy" => gate
            .get_policy(keyed(pb::GetPolicyRequest { tenant: t() }, key))
            .await
            .map(drop),
        other => panic!("no call for {other}"),
    }
}

/// Seeds a tenant through an admin key: one prospect with a signal, one piece for her.
async fn seed(app: &TestApp, tenant: &str, admin: &str) {
    let ch = app.channel.clone();
    ProspectServiceClient::new(ch.clone())
        .upsert_prospect(keyed(
            pb::UpsertProspectRequest {
                tenant: tenant.into(),
                prospect: Some(prospect(
                    "ana",
                    "Ana Ruiz",
                    "Northwind Logistics",
                    "VP Operations",
                )),
            },
            Some(admin),
        ))
        .await
        .unwrap();
    ProspectServiceClient::new(ch.clone())
        .add_signals(keyed(
            pb::AddSignalsRequest {
                tenant: tenant.into(),
                prospect_id: "ana".into(),
                signals: vec![signal(
                    "a1",
                    pb::SignalSource::CallNote,
                    "Our warehouse pickers lose hours because slotting is never updated.",
                )],
            },
            Some(admin),
        ))
        .await
        .unwrap();
    ContentServiceClient::new(ch)
        .register_content(keyed(
            pb::RegisterContentRequest {
                tenant: tenant.into(),
                content: Some(content_piece(
                    "guide",
                    pb::ContentKind::Ebook,
                    "Dynamic slotting",
                    "Re-slot your warehouse weekly from demand data.",
                )),
            },
            Some(admin),
        ))
        .await
        .unwrap();
}

async fn spawn_with_keys(file: &Path) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let file = file.to_path_buf();
    let mut app = spawn_app_in(dir.path(), move |s| s.security.api_keys_file = Some(file)).await;
    app.keep(dir);
    app
}

#[tokio::test]
async fn every_role_against_every_rpc_for_its_own_and_another_tenant() {
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("keys.json");
    let root = add_key(&file, "root", "acme,other", "admin");
    let secrets = [
        (Role::Read, add_key(&file, "reader", "acme", "read")),
        (Role::Write, add_key(&file, "writer", "acme", "write")),
        (Role::Admin, add_key(&file, "admin", "acme", "admin")),
    ];
    let app = spawn_with_keys(&file).await;
    seed(&app, "acme", &root).await;
    seed(&app, "other", &root).await;

    let mut table = String::from(
        "| RPC | needs | read: acme | read: other | write: acme | write: other | admin: acme | admin: other |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut wrong = Vec::new();
    for (rpc, needs) in RPCS {
        table.push_str(&format!("| {rpc} | {} |", needs.as_str()));
        for (role, secret) in &secrets {
            for tenant in ["acme", "other"] {
                let got = call(&app.channel, rpc, tenant, Some(secret)).await;
                let allowed = tenant == "acme" && *role >= needs;
                let code = got.as_ref().err().map_or(Code::Ok, |s| s.code());
                table.push_str(&format!(" {code:?} |"));
                let refused = matches!(code, Code::PermissionDenied | Code::Unauthenticated);
                if allowed == refused {
                    wrong.push(format!("{rpc} as {} for {tenant}: {got:?}", role.as_str()));
                }
                if let Err(status) = &got
                    && code == Code::PermissionDenied
                {
                    // A refusal names the tenant or the RPC, and nothing of the data.
                    let m = status.message();
                    assert!(m.contains(tenant) || m.contains("may not call"), "{m}");
                    for data in ["Ana", "Northwind", "slotting", "warehouse"] {
                        assert!(!m.contains(data), "{m}");
                    }
                    // Its details are a stable reason and nothing else.
                    let info = tonic_types::StatusExt::get_details_error_info(status)
                        .expect("an ErrorInfo");
                    assert!(
                        ["ROLE_INSUFFICIENT", "TENANT_NOT_GRANTED"].contains(&info.reason.as_str()),
                        "{info:?}"
                    );
                    assert!(info.metadata.is_empty(), "{info:?}");
                    let details = String::from_utf8_lossy(status.details());
                    for data in ["Ana", "Northwind", "slotting", "warehouse"] {
                        assert!(!details.contains(data), "{details}");
                    }
                }
            }
        }
        table.push('\n');
    }
    println!("{table}");
    assert!(
        wrong.is_empty(),
        "cells that disagree with the role table:\n{}\n{table}",
        wrong.join("\n")
    );

    // No key, an unknown key, or a known id with the wrong secret: UNAUTHENTICATED, for any RPC.
    let forged = format!("reader.{}", "0".repeat(64));
    for key in [None, Some("not-a-key"), Some(forged.as_str())] {
        let got = call(&app.channel, "ProspectService/GetProspect", "acme", key)
            .await
            .unwrap_err();
        assert_eq!(got.code(), Code::Unauthenticated, "{key:?}: {got:?}");
        assert!(!got.message().contains("Ana"));
    }
    // Health stays open (probes carry no key), and so does reflection by default.
    let health = app
        .health()
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health without a key")
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn a_key_added_or_revoked_in_the_file_takes_effect_while_the_service_runs() {
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("keys.json");
    let admin = add_key(&file, "admin", "*", "admin");
    let app = spawn_with_keys(&file).await;
    seed(&app, "acme", &admin).await;

    let late = add_key(&file, "late", "acme", "read");
    let works = |key: String| {
        let app = &app;
        async move {
            call(
                &app.channel,
                "ProspectService/GetProspect",
                "acme",
                Some(&key),
            )
            .await
        }
    };
    // The file is read again within a second; wait on the answer, at most ten seconds.
    let mut accepted = false;
    for _ in 0..100 {
        if works(late.clone()).await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "the added key was never accepted");
    keys_command(&["revoke", "--file", file.to_str().unwrap(), "--id", "late"]);
    let mut refused = false;
    for _ in 0..100 {
        if let Err(s) = works(late.clone()).await
            && s.code() == Code::Unauthenticated
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the revoked key was still accepted");
    // The other key never stopped working.
    works(admin.clone()).await.expect("the admin key");
    // A broken file keeps the keys in force.
    std::fs::write(&file, "{ not json").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    works(admin)
        .await
        .expect("the admin key, after a broken edit");
    // The file holds hashes only.
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(!text.contains(late.split_once('.').unwrap().1));
}

#[tokio::test]
async fn without_keys_the_service_listens_on_loopback_only_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut open = pertinent::config::ServeSettings::for_local(dir.path());
    open.listen = "0.0.0.0:0".parse().unwrap();
    let refused = format!(
        "{:#}",
        open.clone().validate().expect_err("no keys off loopback")
    );
    assert!(
        refused.contains("--insecure-no-auth") && refused.contains("--api-keys-file"),
        "{refused}"
    );
    open.security.insecure_no_auth = true;
    open.validate().expect("explicitly insecure");
    // Keys make any address acceptable.
    let mut keyed = pertinent::config::ServeSettings::for_local(dir.path());
    keyed.listen = "0.0.0.0:0".parse().unwrap();
    keyed.security.api_keys_file = Some(dir.path().join("keys.json"));
    keyed.validate().expect("with keys");
}

#[test]
fn help_never_prints_a_secret_from_the_environment() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pertinent"))
        .args(["serve", "--help"])
        .env("PERTINENT_QDRANT_API_KEY", "hunter2-qdrant-secret")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--qdrant-api-key"), "{help}");
    assert!(!help.contains("hunter2-qdrant-secret"), "{help}");
}

/// Every file in `dir` whose bytes contain `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read(e.path())
                .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn an_erased_prospects_texts_are_nowhere_in_the_data_directory() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let secrets = [
        "Zebulon Quokkaface",
        "Xylophonic Widgets",
        "marmalade centrifuge",
    ];
    upsert(&app, "t", prospect("zq-91", secrets[0], secrets[1], "CTO")).await;
    add_signals(
        &app,
        "t",
        "zq-91",
        vec![signal(
            "s1",
            pb::SignalSource::CallNote,
            "Our marmalade centrifuge line stops every Tuesday; we need vibration alerts.",
        )],
    )
    .await;
    // Before: the texts are on disk (the search can find them), and so is everyone else's.
    let dir = app.data_dir().to_path_buf();
    for s in secrets {
        assert!(!files_holding(&dir, s).is_empty(), "{s} was never written");
    }
    app.prospects()
        .delete_prospect(pb::DeleteProspectRequest {
            tenant: "t".into(),
            id: "zq-91".into(),
        })
        .await
        .unwrap();
    // The checkpoint after an erasure runs within a fraction of a second; wait on it.
    let mut left = Vec::new();
    for _ in 0..100 {
        left = secrets
            .iter()
            .flat_map(|s| {
                files_holding(&dir, s)
                    .into_iter()
                    .map(move |f| format!("{s} in {f}"))
            })
            .collect();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "erased text left on disk: {left:?}");
    // Not an empty store: the other prospects' texts are still there.
    assert!(!files_holding(&dir, "Ana Ruiz").is_empty());
}

// Multi-threaded: the client's connection must be able to close while the test waits for the
// child to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_text_name_or_key_reaches_the_log() {
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("keys.json");
    let admin = add_key(&file, "ops", "*", "admin");
    let data = tempfile::tempdir().unwrap();
    let child = Child::start(&[
        "--api-keys-file",
        file.to_str().unwrap(),
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", child.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let secrets = [
        "Wilhelmina Qwertyson",
        "Frobnicate Industries",
        "our zanzibar ledger migration is stuck",
        "Quarterly zanzibar ledger guide",
        "a draft about zanzibar ledgers for Wilhelmina",
        "thanks but the zanzibar budget is gone",
    ];
    let key = Some(admin.as_str());
    ProspectServiceClient::new(channel.clone())
        .upsert_prospect(keyed(
            pb::UpsertProspectRequest {
                tenant: "acme".into(),
                prospect: Some(prospect("wq", secrets[0], secrets[1], "CFO")),
            },
            key,
        ))
        .await
        .unwrap();
    ProspectServiceClient::new(channel.clone())
        .add_signals(keyed(
            pb::AddSignalsRequest {
                tenant: "acme".into(),
                prospect_id: "wq".into(),
                signals: vec![signal("n1", pb::SignalSource::CallNote, secrets[2])],
            },
            key,
        ))
        .await
        .unwrap();
    ContentServiceClient::new(channel.clone())
        .register_content(keyed(
            pb::RegisterContentRequest {
                tenant: "acme".into(),
                content: Some(content_piece(
                    "guide",
                    pb::ContentKind::Ebook,
                    secrets[3],
                    secrets[3],
                )),
            },
            key,
        ))
        .await
        .unwrap();
    let mut gate = GateServiceClient::new(channel.clone());
    gate.check(keyed(
        pb::CheckRequest {
            tenant: "acme".into(),
            prospect_id: "wq".into(),
            candidate: by_draft("Wilhelmina", secrets[4]),
            send_id: "s1".into(),
            channel: "email".into(),
            planned_at: None,
            dry_run: false,
        },
        key,
    ))
    .await
    .unwrap();
    gate.record_engagement(keyed(
        pb::EngagementRequest {
            tenant: "acme".into(),
            prospect_id: "wq".into(),
            send_id: "s1".into(),
            kind: pb::EngagementKind::RepliedNegative as i32,
            at: None,
            text: secrets[5].into(),
        },
        key,
    ))
    .await
    .unwrap();
    // Every RPC once more, and the refusals: no key, a forged secret for a known id.
    for (rpc, _) in RPCS {
        let _ = call(&channel, rpc, "acme", key).await;
    }
    let forged = format!("ops.{}", "f".repeat(64));
    let _ = call(
        &channel,
        "ProspectService/GetProspect",
        "acme",
        Some(&forged),
    )
    .await;
    let _ = call(&channel, "ProspectService/GetProspect", "acme", None).await;
    // Every connection closed, so that the graceful stop has nothing to wait for.
    drop((gate, channel));
    let log = tokio::task::spawn_blocking(move || child.stop())
        .await
        .unwrap();
    assert!(log.contains("serving gRPC"), "the log was captured: {log}");
    assert!(log.contains("refused"), "the refusals were logged: {log}");
    let key_part = admin.split_once('.').unwrap().1;
    for needle in secrets.iter().copied().chain([key_part, &forged[4..]]) {
        assert!(!log.contains(needle), "{needle:?} is in the log");
    }
}

/// A certificate authority made for one test.
struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    /// A certificate for `name` signed by this CA, and its key, as PEM.
    fn issue(&self, name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }
}

/// The service on TLS, built and run here (the shared helpers speak plaintext).
async fn spawn_tls(
    data: &Path,
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut settings = pertinent::config::ServeSettings::for_local(data);
    settings.security.tls_cert = Some(cert.to_path_buf());
    settings.security.tls_key = Some(key.to_path_buf());
    settings.security.tls_client_ca = client_ca.map(Path::to_path_buf);
    settings.security.health_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = pertinent::startup::App::build(settings.validate().unwrap())
        .await
        .expect("the service starts on TLS");
    let addr = app.addr();
    // Probes that cannot speak TLS get health, and only health, in plaintext.
    let probe =
        tonic::transport::Channel::from_shared(format!("http://{}", app.health_addr().unwrap()))
            .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let probe = probe.connect().await.expect("the health port");
    tonic_health::pb::health_client::HealthClient::new(probe.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("plaintext health on the health port");
    let other = ScoringServiceClient::new(probe)
        .score(pb::ScoreRequest::default())
        .await
        .expect_err("only health on the health port");
    assert_eq!(other.code(), Code::Unimplemented, "{other:?}");
    (addr, stop)
}

/// A Health Check over TLS trusting `ca_pem`, with a client certificate if given.
async fn health_over_tls(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    identity: Option<&(String, String)>,
) -> Result<(), String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = tonic::transport::Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(drop)
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mtls_with_certificates_reloaded_while_serving() {
    let pki = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) = (
        pki.path().join("server.pem"),
        pki.path().join("server.key"),
        pki.path().join("clients-ca.pem"),
    );
    let first = TestCa::new("first ca");
    let (server_cert, server_key) = first.issue("localhost");
    std::fs::write(&cert, &server_cert).unwrap();
    std::fs::write(&key, &server_key).unwrap();

    // TLS: a client that trusts the CA gets in; plaintext does not.
    let data = tempfile::tempdir().unwrap();
    let (addr, stop) = spawn_tls(data.path(), &cert, &key, None).await;
    health_over_tls(addr, &first.pem(), None)
        .await
        .expect("a TLS client");
    let plain = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3))
        .connect()
        .await;
    let plain_failed = match plain {
        Err(_) => true,
        Ok(channel) => tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            })
            .await
            .is_err(),
    };
    assert!(
        plain_failed,
        "a plaintext client was served on the TLS port"
    );
    let other = TestCa::new("someone else");
    assert!(health_over_tls(addr, &other.pem(), None).await.is_err());

    // A renewed certificate (from another CA here, to tell them apart) is served without a
    // restart.
    let renewed = TestCa::new("renewed ca");
    let (new_cert, new_key) = renewed.issue("localhost");
    std::fs::write(&key, &new_key).unwrap();
    std::fs::write(&cert, &new_cert).unwrap();
    let mut reloaded = false;
    for _ in 0..100 {
        if health_over_tls(addr, &renewed.pem(), None).await.is_ok() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reloaded, "the renewed certificate was never served");
    let _ = stop.send(());

    // mTLS: only clients with a certificate from the clients' CA.
    let clients = TestCa::new("clients ca");
    std::fs::write(&ca_file, clients.pem()).unwrap();
    let data = tempfile::tempdir().unwrap();
    let (addr, stop) = spawn_tls(data.path(), &cert, &key, Some(&ca_file)).await;
    let pipeline = clients.issue("pipeline-a");
    health_over_tls(addr, &renewed.pem(), Some(&pipeline))
        .await
        .expect("a client with a certificate");
    assert!(
        health_over_tls(addr, &renewed.pem(), None).await.is_err(),
        "a client without a certificate was served"
    );
    let stranger = other.issue("stranger");
    assert!(
        health_over_tls(addr, &renewed.pem(), Some(&stranger))
            .await
            .is_err(),
        "a client certificate from another CA was accepted"
    );
    let _ = stop.send(());
}

#[tokio::test]
async fn an_unauthenticated_peer_cannot_make_the_server_decode_a_body() {
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("keys.json");
    let admin = add_key(&file, "ops", "*", "admin");
    let app = spawn_with_keys(&file).await;
    // 5 MiB: over --max-message-bytes (4 MiB), which a decoder would refuse with OUT_OF_RANGE.
    let huge = pb::AddSignalsRequest {
        tenant: "acme".into(),
        prospect_id: "ana".into(),
        signals: vec![signal(
            "big",
            pb::SignalSource::CallNote,
            &"x".repeat(5 << 20),
        )],
    };
    let mut client = ProspectServiceClient::new(app.channel.clone());
    let refused = client
        .add_signals(keyed(huge.clone(), None))
        .await
        .expect_err("no key");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // With the key, the same body reaches the decoder and its size limit.
    let decoded = client
        .add_signals(keyed(huge, Some(&admin)))
        .await
        .expect_err("too large");
    assert_ne!(decoded.code(), Code::Unauthenticated, "{decoded:?}");
    assert_ne!(decoded.code(), Code::PermissionDenied, "{decoded:?}");
}
