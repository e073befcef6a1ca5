//! What operators watch: /metrics scraped over HTTP and parsed with a Prometheus parser, before
//! and after a known set of calls, so that each count must move by exactly what was done; and
//! the error details (ErrorInfo, RetryInfo) clients back off by.

use std::collections::BTreeMap;
use std::time::Duration;

use pertinent::grpc::pb;
use pertinent::grpc::pb::gate_service_client::GateServiceClient;
use prometheus_parse::{Scrape, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_types::StatusExt;

use crate::child::Child;
use crate::helpers::*;

/// One scrape: every sample by name and sorted labels.
struct Metrics(BTreeMap<(String, Vec<(String, String)>), f64>, Scrape);

impl Metrics {
    /// GET /metrics over plain HTTP/1.1, parsed.
    async fn scrape(addr: &str) -> Metrics {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("metrics port");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain"),
            "{head}"
        );
        let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
            .expect("the Prometheus text format parses");
        let mut samples = BTreeMap::new();
        for s in &scrape.samples {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            let value = match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
                Value::Summary(_) => continue,
            };
            samples.insert((s.metric.clone(), labels), value);
        }
        Metrics(samples, scrape)
    }

    /// The sum of `name` over the samples whose labels include all of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|((metric, have), _)| {
                metric == name
                    && labels
                        .iter()
                        .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

// Multi-threaded: the child is stopped while the client's connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_by_exactly_what_was_done() {
    let data = tempfile::tempdir().unwrap();
    let child = Child::start(&[
        "--metrics-listen",
        "127.0.0.1:0",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let metrics = child.metrics.clone().expect("a metrics address");
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", child.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let app = ClientOnly(channel.clone());
    upsert_via(
        &app,
        "t",
        prospect("ana", "Ana Ruiz", "Northwind", "VP Operations"),
    )
    .await;
    add_signals_via(
        &app,
        "t",
        "ana",
        vec![signal(
            "s1",
            pb::SignalSource::CallNote,
            "We lose hours every week to manual pick-path planning in the warehouse.",
        )],
    )
    .await;
    let before = Metrics::scrape(&metrics).await;
    let info = before.sum("pertinent_build_info", &[("store", "sqlite")]);
    assert_eq!(info, 1.0, "build info names the store");

    // Three scores of drafts (two the same text), one of an unknown prospect, one check.
    let draft = by_draft(
        "Pick paths",
        "A note on cutting pick-path travel in your warehouse.",
    );
    for _ in 0..2 {
        app.scoring()
            .score(pb::ScoreRequest {
                tenant: "t".into(),
                prospect_id: "ana".into(),
                candidate: draft.clone(),
            })
            .await
            .expect("a score");
    }
    app.scoring()
        .score(pb::ScoreRequest {
            tenant: "t".into(),
            prospect_id: "ana".into(),
            candidate: by_draft("Slotting", "Slotting by velocity, for your pickers."),
        })
        .await
        .expect("a score");
    let missing = app
        .scoring()
        .score(pb::ScoreRequest {
            tenant: "t".into(),
            prospect_id: "nobody".into(),
            candidate: draft.clone(),
        })
        .await
        .expect_err("an unknown prospect");
    assert_eq!(missing.code(), Code::NotFound);
    let decided = GateServiceClient::new(channel.clone())
        .check(pb::CheckRequest {
            tenant: "t".into(),
            prospect_id: "ana".into(),
            candidate: draft.clone(),
            send_id: "m-1".into(),
            channel: "email".into(),
            planned_at: None,
            dry_run: false,
        })
        .await
        .expect("a decision")
        .into_inner();
    let decision = match pb::Decision::try_from(decided.decision) {
        Ok(pb::Decision::Send) => "send",
        Ok(pb::Decision::Review) => "review",
        Ok(pb::Decision::Reject) => "reject",
        Ok(pb::Decision::Unspecified) | Err(_) => panic!("no decision: {decided:?}"),
    };
    drop(channel);
    let after = Metrics::scrape(&metrics).await;
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);

    let score = [
        ("service", "pertinent.v1.ScoringService"),
        ("method", "Score"),
    ];
    let with = |code: &'static str| {
        let mut l = score.to_vec();
        l.push(("code", code));
        l
    };
    assert_eq!(moved("pertinent_grpc_requests_total", &with("OK")), 3.0);
    assert_eq!(
        moved("pertinent_grpc_requests_total", &with("NOT_FOUND")),
        1.0
    );
    assert_eq!(
        moved("pertinent_grpc_request_duration_seconds", &score),
        4.0,
        "every Score is timed"
    );
    let check = [
        ("service", "pertinent.v1.GateService"),
        ("method", "Check"),
        ("code", "OK"),
    ];
    assert_eq!(moved("pertinent_grpc_requests_total", &check), 1.0);
    assert_eq!(
        moved(
            "pertinent_gate_decisions_total",
            &[("decision", decision), ("kind", "decided")]
        ),
        1.0
    );
    assert!(
        moved(
            "pertinent_gate_decision_reasons_total",
            &[("decision", decision)]
        ) >= 1.0,
        "the decision's reasons are counted"
    );
    // Two distinct draft texts were embedded; the repeat and the check's draft hit the cache.
    assert_eq!(
        moved(
            "pertinent_cache_requests_total",
            &[("cache", "embedding"), ("result", "miss")]
        ),
        2.0
    );
    assert!(
        moved(
            "pertinent_cache_requests_total",
            &[("cache", "embedding"), ("result", "hit")]
        ) >= 2.0
    );
    assert!(
        moved("pertinent_embedding_batch_texts", &[]) >= 1.0,
        "model batches are counted"
    );
    assert!(moved("pertinent_embedding_batch_duration_seconds", &[]) >= 1.0);
    assert!(
        moved(
            "pertinent_store_operation_duration_seconds",
            &[("operation", "record_decision"), ("adapter", "sqlite")]
        ) >= 1.0,
        "the check's write is timed"
    );
    assert_eq!(
        after.sum("pertinent_grpc_requests_in_flight", &[]),
        0.0,
        "nothing is in flight once every call has answered"
    );
    // No id reaches a label value.
    for s in &after.1.samples {
        for (k, v) in s.labels.iter() {
            assert!(
                !["ana", "nobody", "m-1", "t"].contains(&v.as_str()),
                "{} has {k}={v}",
                s.metric
            );
        }
    }
    child.stop();
}

/// A client of a service this test did not spawn in-process.
struct ClientOnly(tonic::transport::Channel);

impl ClientOnly {
    fn scoring(
        &self,
    ) -> pb::scoring_service_client::ScoringServiceClient<tonic::transport::Channel> {
        pb::scoring_service_client::ScoringServiceClient::new(self.0.clone())
    }
}

async fn upsert_via(app: &ClientOnly, tenant: &str, p: pb::Prospect) {
    pb::prospect_service_client::ProspectServiceClient::new(app.0.clone())
        .upsert_prospect(pb::UpsertProspectRequest {
            tenant: tenant.into(),
            prospect: Some(p),
        })
        .await
        .expect("upsert");
}

async fn add_signals_via(app: &ClientOnly, tenant: &str, id: &str, signals: Vec<pb::Signal>) {
    pb::prospect_service_client::ProspectServiceClient::new(app.0.clone())
        .add_signals(pb::AddSignalsRequest {
            tenant: tenant.into(),
            prospect_id: id.into(),
            signals,
        })
        .await
        .expect("signals");
}

#[tokio::test]
async fn errors_carry_a_stable_reason_and_retryable_ones_a_back_off() {
    let app = spawn_plumbing_app().await;
    let missing = score(&app, "t", "nobody", by_draft("Hi", "A note."))
        .await
        .expect_err("an unknown prospect");
    let info = missing.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.domain, "pertinent.v1");
    assert_eq!(info.reason, "PROSPECT_NOT_FOUND");
    assert!(
        missing.get_details_retry_info().is_none(),
        "NOT_FOUND is not retried"
    );

    let invalid = score(&app, "t", "", by_draft("Hi", "A note."))
        .await
        .unwrap_err();
    assert_eq!(
        invalid.get_details_error_info().unwrap().reason,
        "INVALID_ARGUMENT"
    );
    assert!(
        invalid.get_details_bad_request().is_some(),
        "the field is still named"
    );

    // The store taken away: UNAVAILABLE, with a hint of when to come back.
    app.store.unplug();
    let down = score(&app, "t", "ana", by_draft("Hi", "A note."))
        .await
        .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    assert_eq!(
        down.get_details_error_info().unwrap().reason,
        "STORE_UNAVAILABLE"
    );
    let retry = down.get_details_retry_info().expect("RetryInfo");
    assert!(
        retry
            .retry_delay
            .is_some_and(|d| d >= Duration::from_millis(100))
    );
}

/// An OTLP/gRPC trace receiver on 127.0.0.1:0 that keeps every span it is sent.
#[derive(Clone, Default)]
struct Receiver(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Receiver
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let mut kept = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                kept.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(Default::default()))
    }
}

fn attribute(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::BoolValue(b) => b.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

// Multi-threaded: the child is stopped (which flushes its spans) while connections close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_score_is_traced_under_the_callers_trace_without_any_text() {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap();
    let serving = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let data = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{otlp}");
    let child = Child::start(&[
        "--otlp-endpoint",
        &endpoint,
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", child.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let app = ClientOnly(channel.clone());
    let signal_text = "Our night-shift pick-path planning in Building Zeta is a mess.";
    let draft_body = "A plan to shorten Building Zeta's pick paths, for Quillon's team.";
    upsert_via(
        &app,
        "t",
        prospect("ana", "Ana Quillon", "Northwind", "VP Operations"),
    )
    .await;
    add_signals_via(
        &app,
        "t",
        "ana",
        vec![signal("s1", pb::SignalSource::CallNote, signal_text)],
    )
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = tonic::Request::new(pb::ScoreRequest {
        tenant: "t".into(),
        prospect_id: "ana".into(),
        candidate: by_draft("Pick paths", draft_body),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    app.scoring().score(request).await.expect("a score");
    let check_trace = "5bf92f3577b34da6a3ce929d0e0e4737";
    let mut check = tonic::Request::new(pb::CheckRequest {
        tenant: "t".into(),
        prospect_id: "ana".into(),
        candidate: by_draft("Pick paths", draft_body),
        send_id: "trace-1".into(),
        channel: "email".into(),
        planned_at: None,
        dry_run: false,
    });
    check.metadata_mut().insert(
        "traceparent",
        format!("00-{check_trace}-00f067aa0ba902b8-01")
            .parse()
            .unwrap(),
    );
    GateServiceClient::new(channel.clone())
        .check(check)
        .await
        .expect("a decision");
    drop(app);
    drop(channel);
    child.stop();
    serving.abort();

    let spans = receiver.0.lock().unwrap().clone();
    let ours: Vec<_> = spans
        .iter()
        .filter(|s| hex::encode(&s.trace_id) == trace_id)
        .collect();
    let names: Vec<&str> = ours.iter().map(|s| s.name.as_str()).collect();
    let rpc = ours
        .iter()
        .find(|s| s.name == "pertinent.v1.ScoringService/Score")
        .unwrap_or_else(|| panic!("no Score span under the caller's trace: {names:?}"));
    assert_eq!(
        hex::encode(&rpc.parent_span_id),
        "00f067aa0ba902b7",
        "the caller's span is the parent"
    );
    assert_eq!(attribute(rpc, "rpc.method").as_deref(), Some("Score"));
    assert_eq!(
        attribute(rpc, "rpc.service").as_deref(),
        Some("pertinent.v1.ScoringService")
    );
    assert_eq!(attribute(rpc, "rpc.grpc.status_code").as_deref(), Some("0"));
    assert!(
        rpc.end_time_unix_nano > rpc.start_time_unix_nano,
        "the span has a duration"
    );
    for child in ["model.batch", "store"] {
        assert!(names.contains(&child), "no {child} span in {names:?}");
    }
    let check_names: Vec<&str> = spans
        .iter()
        .filter(|s| hex::encode(&s.trace_id) == check_trace)
        .map(|s| s.name.as_str())
        .collect();
    for step in ["pertinent.v1.GateService/Check", "gate.rules", "store"] {
        assert!(
            check_names.contains(&step),
            "no {step} span in {check_names:?}"
        );
    }
    for span in &spans {
        for a in &span.attributes {
            let value = format!("{:?}", a.value);
            for secret in ["Zeta", "Quillon", "night-shift"] {
                assert!(
                    !value.contains(secret),
                    "span {} holds {secret} in {}",
                    span.name,
                    a.key
                );
            }
        }
    }
}
