//! Bad input: INVALID_ARGUMENT naming the field (google.rpc.BadRequest), nothing stored changes.

use pertinent::grpc::pb;
use pertinent::grpc::pb::SignalSource::*;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

/// Asserts INVALID_ARGUMENT whose BadRequest details name `field`.
fn assert_names(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status
        .get_details_bad_request()
        .expect("BadRequest details");
    let fields: Vec<&str> = details
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert!(fields.contains(&field), "{field} not in {fields:?}");
    assert!(status.message().contains(field), "{}", status.message());
}

async fn add(app: &TestApp, signals: Vec<pb::Signal>) -> tonic::Status {
    app.prospects()
        .add_signals(pb::AddSignalsRequest {
            tenant: "t".into(),
            prospect_id: "p".into(),
            signals,
        })
        .await
        .unwrap_err()
}

async fn signal_count(app: &TestApp) -> u32 {
    app.prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t".into(),
            id: "p".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .signal_count
}

#[tokio::test]
async fn bad_signals_name_their_field_and_store_nothing() {
    let app = spawn_plumbing_app().await;
    upsert(&app, "t", prospect("p", "P", "Co", "CTO")).await;
    add_signals(
        &app,
        "t",
        "p",
        vec![signal("keep", CallNote, "An existing interest.")],
    )
    .await;

    let ok = || signal("s", CallNote, "A fine signal.");
    let cases: Vec<(Vec<pb::Signal>, &str)> = vec![
        (vec![], "signals"),
        (
            vec![pb::Signal {
                id: String::new(),
                ..ok()
            }],
            "signals[0].id",
        ),
        (
            vec![
                ok(),
                pb::Signal {
                    text: String::new(),
                    ..ok()
                },
            ],
            "signals[1].id",
        ),
        (
            vec![pb::Signal {
                text: "   ".into(),
                ..ok()
            }],
            "signals[0].text",
        ),
        (
            vec![pb::Signal {
                text: "x".repeat(16_385),
                ..ok()
            }],
            "signals[0].text",
        ),
        (
            vec![pb::Signal {
                weight: f32::NAN,
                ..ok()
            }],
            "signals[0].weight",
        ),
        (
            vec![pb::Signal {
                weight: -1.0,
                ..ok()
            }],
            "signals[0].weight",
        ),
        (vec![pb::Signal { source: 99, ..ok() }], "signals[0].source"),
        (
            vec![pb::Signal {
                polarity: 7,
                ..ok()
            }],
            "signals[0].polarity",
        ),
        (
            vec![pb::Signal {
                observed_at: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -5,
                }),
                ..ok()
            }],
            "signals[0].observed_at",
        ),
        (
            vec![pb::Signal {
                observed_at: Some(prost_types::Timestamp {
                    seconds: 4_000_000_000,
                    nanos: 0,
                }),
                ..ok()
            }],
            "signals[0].observed_at",
        ),
        (
            (0..257)
                .map(|i| signal(&format!("s{i}"), CallNote, "t"))
                .collect(),
            "signals",
        ),
    ];
    for (signals, field) in cases {
        // A valid signal rides along in most cases: it must not be stored either.
        let status = add(&app, signals).await;
        assert_names(&status, field);
        assert_eq!(signal_count(&app).await, 1, "after the {field} case");
    }
}

#[tokio::test]
async fn bad_ids_tenants_and_prospects_name_their_field() {
    let app = spawn_plumbing_app().await;
    let err = app
        .prospects()
        .upsert_prospect(pb::UpsertProspectRequest {
            tenant: String::new(),
            prospect: Some(prospect("p", "P", "Co", "CTO")),
        })
        .await
        .unwrap_err();
    assert_names(&err, "tenant");
    let err = app
        .prospects()
        .upsert_prospect(pb::UpsertProspectRequest {
            tenant: "t".into(),
            prospect: None,
        })
        .await
        .unwrap_err();
    assert_names(&err, "prospect");
    let err = app
        .prospects()
        .upsert_prospect(pb::UpsertProspectRequest {
            tenant: "t".into(),
            prospect: Some(prospect(&"x".repeat(129), "P", "Co", "CTO")),
        })
        .await
        .unwrap_err();
    assert_names(&err, "prospect.id");
    let err = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t".into(),
            id: "bad\nid".into(),
        })
        .await
        .unwrap_err();
    assert_names(&err, "id");
    let err = app
        .prospects()
        .delete_signals(pb::DeleteSignalsRequest {
            tenant: "t".into(),
            prospect_id: "p".into(),
            ids: vec!["ok".into(), String::new()],
        })
        .await
        .unwrap_err();
    assert_names(&err, "ids[1]");
    // Nothing was created by the refused upserts.
    let missing = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t".into(),
            id: "p".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn bad_content_and_candidates_name_their_field() {
    let app = spawn_plumbing_app().await;
    upsert(&app, "t", prospect("p", "P", "Co", "CTO")).await;
    let good = content_piece("c", pb::ContentKind::BlogPost, "Title", "Body text.");
    let cases = [
        (
            pb::Content {
                kind: 42,
                ..good.clone()
            },
            "content.kind",
        ),
        (
            pb::Content {
                body: String::new(),
                ..good.clone()
            },
            "content.body",
        ),
        (
            pb::Content {
                id: String::new(),
                ..good.clone()
            },
            "content.id",
        ),
        (
            pb::Content {
                title: "t".repeat(2000),
                ..good.clone()
            },
            "content.title",
        ),
        (
            pb::Content {
                tags: vec![String::new()],
                ..good.clone()
            },
            "content.tags[0]",
        ),
    ];
    for (content, field) in cases {
        let err = app
            .content()
            .register_content(pb::RegisterContentRequest {
                tenant: "t".into(),
                content: Some(content),
            })
            .await
            .unwrap_err();
        assert_names(&err, field);
    }
    let never = app
        .content()
        .get_content(pb::GetContentRequest {
            tenant: "t".into(),
            id: "c".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(never.code(), Code::NotFound);

    let err = score(&app, "t", "p", None).await.unwrap_err();
    assert_names(&err, "candidate");
    let err = score(&app, "t", "p", Some(pb::Candidate { item: None }))
        .await
        .unwrap_err();
    assert_names(&err, "candidate.item");
    let err = score(&app, "t", "p", by_draft("t", "")).await.unwrap_err();
    assert_names(&err, "candidate.draft.body");
    let err = score(&app, "t", "", by_content("c")).await.unwrap_err();
    assert_names(&err, "prospect_id");
    let err = score(&app, "t", "p", by_content("c")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let err = app
        .scoring()
        .rank(pb::RankRequest {
            tenant: "t".into(),
            prospect_id: "p".into(),
            candidates: (0..257).filter_map(|_| by_content("c")).collect(),
            top_k: 0,
        })
        .await
        .unwrap_err();
    assert_names(&err, "candidates");
    let err = app
        .scoring()
        .rank(pb::RankRequest {
            tenant: "t".into(),
            prospect_id: "p".into(),
            candidates: vec![pb::Candidate { item: None }],
            top_k: 0,
        })
        .await
        .unwrap_err();
    assert_names(&err, "candidates[0].item");
    let err = app
        .scoring()
        .find_audience(pb::FindAudienceRequest {
            tenant: "t".into(),
            candidate: by_content("c"),
            limit: 100_000,
        })
        .await
        .unwrap_err();
    assert_names(&err, "limit");
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let app = spawn_plumbing_app().await;
    upsert(&app, "t", prospect("p", "P", "Co", "CTO")).await;
    // 256 signals of 16 KiB each are over the 4 MiB message limit. tonic refuses an oversized
    // message with OUT_OF_RANGE before any handler runs.
    let too_big: Vec<pb::Signal> = (0..256)
        .map(|i| signal(&format!("s{i}"), CallNote, &"y".repeat(16_384)))
        .collect();
    let err = app
        .prospects()
        .add_signals(pb::AddSignalsRequest {
            tenant: "t".into(),
            prospect_id: "p".into(),
            signals: too_big,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert_eq!(signal_count(&app).await, 0);
}

#[tokio::test]
async fn overload_is_refused_at_once_with_resource_exhausted() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), |s| {
        s.limits.max_in_flight = 1;
        s.embedding.queue = 1;
    })
    .await;
    upsert(&app, "t", prospect("p", "P", "Co", "CTO")).await;
    add_signals(
        &app,
        "t",
        "p",
        vec![signal(
            "s",
            CallNote,
            "Predictive maintenance for CNC lines.",
        )],
    )
    .await;
    let results = futures::future::join_all((0..32).map(|i| {
        let app = &app;
        async move {
            score(
                app,
                "t",
                "p",
                by_draft("Draft", &format!("Sensor idea number {i} for spindles.")),
            )
            .await
        }
    }))
    .await;
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::ResourceExhausted))
        .count();
    let served = results.iter().filter(|r| r.is_ok()).count();
    assert!(refused > 0, "nothing was refused");
    assert!(served > 0, "nothing was served");
    assert_eq!(refused + served, results.len());
}

#[tokio::test]
async fn a_request_wrong_everywhere_gets_a_small_answer() {
    // 20,000 attribute keys made of control characters, each one a violation: the answer lists
    // a bounded number of them and counts the rest, instead of echoing megabytes back.
    let app = spawn_plumbing_app().await;
    let mut p = prospect("ana", "Ana Ruiz", "Northwind", "VP Operations");
    p.attributes = (0..20_000)
        .map(|i| {
            (
                format!("\u{1}\u{2}{i:05}{}", "\u{7}".repeat(40)),
                "v".into(),
            )
        })
        .collect();
    let refused = app
        .prospects()
        .upsert_prospect(pb::UpsertProspectRequest {
            tenant: "t".into(),
            prospect: Some(p),
        })
        .await
        .expect_err("control characters in keys");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let listed = refused
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations
        .len();
    assert!((1..=10).contains(&listed), "{listed} violations listed");
    assert!(refused.message().contains("more"), "the rest are counted");
    assert!(
        refused.message().len() + refused.details().len() < 8 * 1024,
        "an answer of {} bytes",
        refused.message().len() + refused.details().len()
    );
    // And nothing was stored.
    let missing = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t".into(),
            id: "ana".into(),
        })
        .await
        .expect_err("not stored");
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn no_call_runs_past_the_servers_own_bound() {
    // A client that sends no deadline still cannot hold the server longer than
    // --request-timeout-ms: a new draft needs the model, which takes longer than 1 ms.
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let app = app.restart_with(|s| s.limits.request_timeout_ms = 1).await;
    let cut = score(
        &app,
        "t",
        "ana",
        by_draft("A draft", "About pick paths in your warehouse."),
    )
    .await
    .expect_err("cut off by the server");
    assert!(
        matches!(cut.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{cut:?}"
    );
}

#[tokio::test]
async fn a_prospect_holds_at_most_the_configured_signals_and_replacing_always_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = spawn_with(Model::Hashing, dir.path(), |s| {
        s.limits.max_signals_per_prospect = 5
    })
    .await;
    app.keep(dir);
    upsert(&app, "t", prospect("p", "Ana Ruiz", "Northwind", "VP Ops")).await;
    let three = |prefix: &str| {
        (0..3)
            .map(|i| signal(&format!("{prefix}{i}"), CallNote, "Pick paths at night."))
            .collect::<Vec<_>>()
    };
    add_signals(&app, "t", "p", three("a")).await;
    let refused = add(&app, three("b")).await;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("signals"), "{refused:?}");
    assert_eq!(
        refused.get_details_error_info().unwrap().reason,
        "LIMIT_REACHED"
    );
    assert_eq!(
        signal_count(&app).await,
        3,
        "nothing of the refused call was stored"
    );
    // Replacing the three stored signals, and two new ones, reach the bound exactly.
    let mut five = three("a");
    five.extend((0..2).map(|i| signal(&format!("c{i}"), CallNote, "Slotting by velocity.")));
    add_signals(&app, "t", "p", five).await;
    assert_eq!(signal_count(&app).await, 5);
}
