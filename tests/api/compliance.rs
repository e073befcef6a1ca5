//! The gate's compliance duties over gRPC (issue 11): a decision belongs to its send, its
//! prospect and its piece; sends made after a review are recorded and counted; an opt-out is a
//! state that outlives erasure, a flood of newer events and an unreachable store; retention
//! purges old history but never an opt-out.

use std::time::Duration;

use futures::StreamExt;
use pertinent::grpc::pb;
use pertinent::grpc::pb::ReasonCode;
use tonic::Code;

use crate::gate::{
    at, check, check_request, engage, engage_at, gate, gate_codes, is, now_secs, sends_in_history,
};
use crate::helpers::*;

const DAY: i64 = 86_400;

fn record_send_request(
    tenant: &str,
    prospect: &str,
    send_id: &str,
    candidate: Option<pb::Candidate>,
    decision_id: &str,
) -> pb::RecordSendRequest {
    pb::RecordSendRequest {
        tenant: tenant.into(),
        prospect_id: prospect.into(),
        send_id: send_id.into(),
        candidate,
        decision_id: decision_id.into(),
        channel: "email".into(),
        sent_at: None,
    }
}

async fn record_send(app: &TestApp, request: pb::RecordSendRequest) -> pb::SendRecord {
    gate(app)
        .record_send(request)
        .await
        .expect("record send")
        .into_inner()
}

async fn lift(app: &TestApp, prospect: &str) -> bool {
    gate(app)
        .lift_suppression(pb::LiftSuppressionRequest {
            tenant: "t".into(),
            prospect_id: prospect.into(),
        })
        .await
        .expect("lift suppression")
        .into_inner()
        .lifted
}

fn eli_draft() -> Option<pb::Candidate> {
    by_draft(
        "Eli, CNC downtime",
        "Hi Eli, vibration sensors at Forge Manufacturing predict spindle failures a week ahead.",
    )
}

fn opted_out(d: &pb::GateDecision) -> bool {
    is(d, pb::Decision::Reject) && gate_codes(d).first() == Some(&ReasonCode::OptedOut)
}

#[tokio::test]
async fn a_send_id_belongs_to_one_prospect_and_one_piece() {
    // Issue 11, case 3: a send id reused for another prospect, or for one that does not
    // exist, returned the first prospect's decision, SEND included.
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let first = check(
        &app,
        check_request("ben", by_content("access-reviews"), "campaign-1", None),
    )
    .await;
    assert!(is(&first, pb::Decision::Send), "{first:?}");

    let other = gate(&app)
        .check(check_request(
            "chen",
            by_content("no-show"),
            "campaign-1",
            None,
        ))
        .await
        .expect_err("another prospect under the same send id");
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    assert!(other.message().starts_with("send_id:"), "{other:?}");
    assert!(
        !other.message().contains("ben"),
        "says nothing of the first: {other:?}"
    );

    let ghost = gate(&app)
        .check(check_request(
            "ghost",
            by_content("access-reviews"),
            "campaign-1",
            None,
        ))
        .await
        .expect_err("a prospect that does not exist");
    assert_eq!(ghost.code(), Code::NotFound, "{ghost:?}");

    let piece = gate(&app)
        .check(check_request(
            "ben",
            by_content("checkout"),
            "campaign-1",
            None,
        ))
        .await
        .expect_err("another piece under the same send id");
    assert_eq!(piece.code(), Code::FailedPrecondition, "{piece:?}");
    assert!(piece.message().contains("send_id"), "{piece:?}");

    // The real retry still gets its decision back.
    let retry = check(
        &app,
        check_request("ben", by_content("access-reviews"), "campaign-1", None),
    )
    .await;
    assert!(retry.replayed && retry.decision_id == first.decision_id);

    // A refusal (remembered, not stored) is bound the same way.
    let blast = check(
        &app,
        check_request("ana", by_content("company-news"), "campaign-2", None),
    )
    .await;
    assert!(is(&blast, pb::Decision::Reject), "{blast:?}");
    let reused = gate(&app)
        .check(check_request(
            "dara",
            by_content("company-news"),
            "campaign-2",
            None,
        ))
        .await
        .expect_err("a refusal's send id for another prospect");
    assert_eq!(reused.code(), Code::FailedPrecondition, "{reused:?}");

    // Once the prospect is erased, its send id is NOT_FOUND, never a replay.
    app.prospects()
        .delete_prospect(pb::DeleteProspectRequest {
            tenant: "t".into(),
            id: "ben".into(),
        })
        .await
        .unwrap();
    let erased = gate(&app)
        .check(check_request(
            "ben",
            by_content("access-reviews"),
            "campaign-1",
            None,
        ))
        .await
        .expect_err("an erased prospect");
    assert_eq!(erased.code(), Code::NotFound, "{erased:?}");
}

/// A tenant with one prospect and one piece for her: too young for a baseline, so every Check
/// is REVIEW (docs/scoring.md).
async fn young_tenant(app: &TestApp) {
    use pb::SignalSource::*;
    upsert(
        app,
        "y",
        prospect("ben", "Ben Okafor", "Helix Bank", "CISO"),
    )
    .await;
    add_signals(
        app,
        "y",
        "ben",
        vec![
            signal(
                "b1",
                CallNote,
                "The regulator asked us to prove who has access to customer data; our access reviews are spreadsheets and take a quarter.",
            ),
            signal(
                "b2",
                EmailReply,
                "We need to automate quarterly user access reviews for SOX before the next audit.",
            ),
        ],
    )
    .await;
    for (id, title, body) in [
        (
            "access-reviews",
            "How a regional bank automated SOX user access reviews",
            "Quarterly access certification went from a quarter of spreadsheet work to two days, with an audit trail the regulator accepted.",
        ),
        (
            "audit-trail",
            "Evidence the regulator accepts: a trail of every access decision",
            "Every reviewer decision on customer-data access, kept and searchable for the audit.",
        ),
    ] {
        register(
            app,
            "y",
            content_piece(id, pb::ContentKind::CaseStudy, title, body),
        )
        .await;
    }
}

fn young_check(candidate: Option<pb::Candidate>, send_id: &str) -> pb::CheckRequest {
    pb::CheckRequest {
        tenant: "y".into(),
        ..check_request("ben", candidate, send_id, None)
    }
}

#[tokio::test]
async fn a_reviewed_send_recorded_with_record_send_counts_for_every_rule() {
    // Issue 11, case 4: a send approved after REVIEW was invisible to caps and repeats.
    let app = spawn_app().await;
    young_tenant(&app).await;
    gate(&app)
        .set_policy(pb::SetPolicyRequest {
            tenant: "y".into(),
            policy: Some(pb::Policy {
                max_sends: 1,
                window_seconds: (7 * DAY) as u64,
                min_gap_seconds: 1,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let review = check(&app, young_check(by_content("access-reviews"), "r-1")).await;
    assert!(is(&review, pb::Decision::Review), "{review:?}");

    // The person approved it: the pipeline records the send with the REVIEW's decision id.
    let sent = record_send(
        &app,
        record_send_request("y", "ben", "r-1", None, &review.decision_id),
    )
    .await;
    assert_eq!(sent.send_id, "r-1");
    assert_eq!(sent.decision_id, review.decision_id);
    assert_eq!(sent.candidate_id, "access-reviews");
    // Idempotent on the send id.
    let again = record_send(
        &app,
        record_send_request("y", "ben", "r-1", None, &review.decision_id),
    )
    .await;
    assert_eq!(again, sent);

    // The same piece again is a repeat of the recorded send.
    let repeat = check(&app, young_check(by_content("access-reviews"), "r-2")).await;
    assert!(is(&repeat, pb::Decision::Reject), "{repeat:?}");
    assert!(
        gate_codes(&repeat).contains(&ReasonCode::Repeat),
        "{repeat:?}"
    );
    assert_eq!(repeat.repeat_of_send_id, "r-1");
    // Another piece meets the cap of one a week, which the recorded send filled.
    let capped = check(&app, young_check(by_content("audit-trail"), "r-3")).await;
    assert!(is(&capped, pb::Decision::Reject), "{capped:?}");
    assert!(
        gate_codes(&capped).contains(&ReasonCode::FrequencyCap),
        "{capped:?}"
    );

    // History lists it, and a restart changes none of this.
    let history = |app: &TestApp| {
        let mut client = gate(app);
        async move {
            client
                .history(pb::HistoryRequest {
                    tenant: "y".into(),
                    prospect_id: "ben".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .events
        }
    };
    let events = history(&app).await;
    assert!(
        events.iter().any(
            |e| matches!(&e.event, Some(pb::history_event::Event::Send(s)) if s.send_id == "r-1")
        ),
        "{events:?}"
    );
    let app = app.restart().await;
    let capped = check(&app, young_check(by_content("audit-trail"), "r-4")).await;
    assert!(
        gate_codes(&capped).contains(&ReasonCode::FrequencyCap),
        "{capped:?}"
    );

    // A send through another tool: no Check, the candidate says what went out.
    let elsewhere = record_send(
        &app,
        pb::RecordSendRequest {
            sent_at: at(now_secs() - 30 * DAY),
            ..record_send_request(
                "y",
                "ben",
                "crm-77",
                by_draft(
                    "Ben, access reviews",
                    "Hi Ben, a note about access reviews.",
                ),
                "",
            )
        },
    )
    .await;
    assert_eq!(elsewhere.candidate_id, "draft");
    assert_eq!(elsewhere.sent_at.unwrap().seconds, now_secs() - 30 * DAY);
}

#[tokio::test]
async fn record_send_refuses_what_it_cannot_bind_and_names_the_field() {
    let app = spawn_app().await;
    young_tenant(&app).await;
    let review = check(&app, young_check(by_content("access-reviews"), "b-1")).await;
    let draft = check(
        &app,
        young_check(
            by_draft(
                "Ben, SOX access reviews",
                "Hi Ben, automated certification for Helix Bank's SOX reviews.",
            ),
            "b-2",
        ),
    )
    .await;
    upsert(
        &app,
        "y",
        prospect("chen", "Chen Wei", "Brightline", "Head"),
    )
    .await;
    let refused = |request: pb::RecordSendRequest| {
        let mut client = gate(&app);
        async move { client.record_send(request).await.expect_err("refused") }
    };
    let cases = [
        (
            record_send_request("y", "ben", "b-9", None, ""),
            Code::InvalidArgument,
            "candidate",
        ),
        (
            record_send_request("y", "ben", "b-1", None, "not-a-uuid"),
            Code::InvalidArgument,
            "decision_id",
        ),
        // A decision id that is not the decision of this send id.
        (
            record_send_request("y", "ben", "b-1", None, &draft.decision_id),
            Code::FailedPrecondition,
            "decision_id",
        ),
        // The Check judged a draft, which is not kept: the text must come with the send.
        (
            record_send_request("y", "ben", "b-2", None, &draft.decision_id),
            Code::FailedPrecondition,
            "candidate",
        ),
        // The Check's send id belongs to ben.
        (
            record_send_request("y", "chen", "b-1", None, &review.decision_id),
            Code::FailedPrecondition,
            "send_id",
        ),
        (
            record_send_request("y", "ghost", "b-8", by_content("access-reviews"), ""),
            Code::NotFound,
            "prospect",
        ),
        (
            pb::RecordSendRequest {
                sent_at: at(now_secs() + 3650 * DAY),
                ..record_send_request("y", "ben", "b-7", by_content("access-reviews"), "")
            },
            Code::InvalidArgument,
            "sent_at",
        ),
    ];
    for (request, code, field) in cases {
        let err = refused(request.clone()).await;
        assert_eq!(err.code(), code, "{request:?}: {err:?}");
        assert!(err.message().contains(field), "{request:?}: {err:?}");
    }
    // Nothing of that was recorded.
    let sends = gate(&app)
        .history(pb::HistoryRequest {
            tenant: "y".into(),
            prospect_id: "ben".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(sends.is_empty(), "{sends:?}");
    // A send id another prospect's send holds is refused too.
    record_send(
        &app,
        record_send_request("y", "ben", "b-1", None, &review.decision_id),
    )
    .await;
    let taken = refused(record_send_request(
        "y",
        "chen",
        "b-1",
        by_content("audit-trail"),
        "",
    ))
    .await;
    assert_eq!(taken.code(), Code::FailedPrecondition, "{taken:?}");
    assert!(taken.message().contains("send_id"), "{taken:?}");
}

#[tokio::test]
async fn erasure_keeps_the_refusal_and_only_a_resubscribe_or_an_operator_lifts_it() {
    // Issue 11, case 5: DeleteProspect took the opt-out with it.
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let now = now_secs();
    engage_at(
        &app,
        "eli",
        "m1",
        pb::EngagementKind::Unsubscribed,
        now - 3600,
    )
    .await
    .unwrap();
    app.prospects()
        .delete_prospect(pb::DeleteProspectRequest {
            tenant: "t".into(),
            id: "eli".into(),
        })
        .await
        .unwrap();
    // The CRM sync brings the person back.
    upsert(
        &app,
        "t",
        prospect("eli", "Eli Novak", "Forge Manufacturing", "Plant Manager"),
    )
    .await;
    add_signals(
        &app,
        "t",
        "eli",
        vec![signal(
            "e1",
            pb::SignalSource::CallNote,
            "Unplanned downtime on our CNC line costs us a shift a week; we want vibration sensors.",
        )],
    )
    .await;
    let d = check(&app, check_request("eli", eli_draft(), "m2", None)).await;
    assert!(opted_out(&d), "{d:?}");

    // The list holds a keyed hash, not the id, and no prospect's row.
    let file = app.data_dir().join("pertinent.sqlite3");
    let db =
        rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let rows: Vec<(String, String)> = db
        .prepare("SELECT key, entry FROM suppressions")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0.len(), 64);
    assert!(
        !rows[0].0.contains("eli") && !rows[0].1.contains("eli"),
        "{rows:?}"
    );

    // A re-subscribe older than the opt-out does not lift it; a newer one does.
    engage_at(
        &app,
        "eli",
        "m0",
        pb::EngagementKind::Resubscribed,
        now - 7200,
    )
    .await
    .unwrap();
    let d = check(&app, check_request("eli", eli_draft(), "m3", None)).await;
    assert!(opted_out(&d), "{d:?}");
    engage_at(&app, "eli", "m4", pb::EngagementKind::Resubscribed, now)
        .await
        .unwrap();
    let d = check(&app, check_request("eli", eli_draft(), "m5", None)).await;
    assert!(!gate_codes(&d).contains(&ReasonCode::OptedOut), "{d:?}");

    // An operator lifts it, for a prospect that may not even exist.
    engage(&app, "eli", "m6", pb::EngagementKind::Complained, "").await;
    let d = check(&app, check_request("eli", eli_draft(), "m7", None)).await;
    assert!(opted_out(&d), "{d:?}");
    assert!(d.reasons[0].message.contains("complained"), "{d:?}");
    assert!(lift(&app, "eli").await);
    assert!(!lift(&app, "eli").await, "nothing left to lift");
    assert!(!lift(&app, "nobody").await);
    let d = check(&app, check_request("eli", eli_draft(), "m8", None)).await;
    assert!(!gate_codes(&d).contains(&ReasonCode::OptedOut), "{d:?}");
}

#[tokio::test]
async fn when_the_store_is_down_an_opted_out_prospect_is_rejected_whatever_the_fail_decision() {
    // Issue 11, case 6: the fail decision answered without knowing of the opt-out.
    let dir = tempfile::tempdir().unwrap();
    let allow_send = |s: &mut pertinent::config::ServeSettings| {
        s.gate.gate_fail_decision = Some(pertinent::config::FailDecision::Send);
        s.gate.allow_fail_send = true;
    };
    let app = spawn_app_in(dir.path(), allow_send).await;
    seed_tenant(&app, "t").await;
    engage(&app, "eli", "f1", pb::EngagementKind::Unsubscribed, "").await;
    // A new process: what it knows of the opt-out comes from the list it loaded at start.
    let app = app.restart_with(allow_send).await;
    app.store.unplug();
    let d = check(&app, check_request("eli", eli_draft(), "f2", None)).await;
    assert!(opted_out(&d), "{d:?}");
    assert!(
        gate_codes(&d).contains(&ReasonCode::StoreUnavailable),
        "{d:?}"
    );
    // Anyone else gets the fail decision, SEND here.
    let d = check(
        &app,
        check_request("ben", by_content("access-reviews"), "f3", None),
    )
    .await;
    assert!(is(&d, pb::Decision::Send), "{d:?}");
    assert_eq!(gate_codes(&d), vec![ReasonCode::StoreUnavailable]);
    drop(app);

    // SEND as the fail decision needs the flag, at start and in SetPolicy.
    let other = tempfile::tempdir().unwrap();
    let mut settings = pertinent::config::ServeSettings::for_local(other.path());
    settings.gate.gate_fail_decision = Some(pertinent::config::FailDecision::Send);
    // Refused when the settings are checked, before anything starts.
    let refused = match settings.validate() {
        Ok(_) => panic!("a fail decision of SEND without --allow-fail-send passed"),
        Err(e) => format!("{e:#}"),
    };
    assert!(refused.contains("--allow-fail-send"), "{refused}");
    let plain = spawn_app().await;
    let err = gate(&plain)
        .set_policy(pb::SetPolicyRequest {
            tenant: "t".into(),
            policy: Some(pb::Policy {
                fail_decision: pb::Decision::Send as i32,
                ..Default::default()
            }),
        })
        .await
        .expect_err("SEND without the flag");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("policy.fail_decision"), "{err:?}");
}

#[tokio::test]
async fn a_flood_of_newer_events_cannot_push_an_opt_out_or_a_negative_reply_out_of_view() {
    // Issue 11, case 7: the gate read the newest 1,000 engagements.
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let now = now_secs();
    engage_at(
        &app,
        "eli",
        "x-0",
        pb::EngagementKind::Unsubscribed,
        now - 7200,
    )
    .await
    .unwrap();
    engage_at(
        &app,
        "ben",
        "x-0",
        pb::EngagementKind::RepliedNegative,
        now - 7200,
    )
    .await
    .unwrap();
    let floods = ["eli", "ben"]
        .into_iter()
        .flat_map(|who| (1..=1_100).map(move |i| (who, i)));
    futures::stream::iter(floods)
        .map(|(who, i)| {
            let app = &app;
            async move {
                engage_at(
                    app,
                    who,
                    &format!("x-{i}"),
                    pb::EngagementKind::Opened,
                    now - 3600 + i,
                )
                .await
                .expect("an open")
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let d = check(&app, check_request("eli", eli_draft(), "x-eli", None)).await;
    assert!(opted_out(&d), "{d:?}");
    let d = check(
        &app,
        check_request("ben", by_content("access-reviews"), "x-ben", None),
    )
    .await;
    assert!(is(&d, pb::Decision::Reject), "{d:?}");
    assert_eq!(gate_codes(&d)[0], ReasonCode::Cooldown, "{d:?}");
}

#[tokio::test]
async fn retention_purges_old_history_but_never_the_opt_out() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let now = now_secs();
    let long_ago = now - 800 * DAY;
    record_send(
        &app,
        pb::RecordSendRequest {
            tenant: "t".into(),
            sent_at: at(long_ago),
            ..record_send_request("t", "ben", "old-1", by_content("access-reviews"), "")
        },
    )
    .await;
    record_send(
        &app,
        record_send_request("t", "ben", "new-1", by_content("checkout"), ""),
    )
    .await;
    engage_at(&app, "ben", "old-1", pb::EngagementKind::Opened, long_ago)
        .await
        .unwrap();
    engage_at(
        &app,
        "eli",
        "old-2",
        pb::EngagementKind::Unsubscribed,
        long_ago,
    )
    .await
    .unwrap();
    let before: Vec<String> = sends_in_history(&app, "ben")
        .await
        .into_iter()
        .map(|s| s.send_id)
        .collect();
    assert_eq!(before, ["new-1", "old-1"]);

    // Retention (730 days by default) applies at start.
    let app = app.restart().await;
    let after: Vec<String> = sends_in_history(&app, "ben")
        .await
        .into_iter()
        .map(|s| s.send_id)
        .collect();
    assert_eq!(after, ["new-1"]);
    let events = gate(&app)
        .history(pb::HistoryRequest {
            tenant: "t".into(),
            prospect_id: "ben".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.event, Some(pb::history_event::Event::Engagement(_)))),
        "{events:?}"
    );
    // The opt-out from 800 days ago holds.
    let d = check(&app, check_request("eli", eli_draft(), "old-3", None)).await;
    assert!(opted_out(&d), "{d:?}");

    // With retention off nothing goes.
    let kept = app.restart_with(|s| s.gate.retention_days = 0).await;
    record_send(
        &kept,
        pb::RecordSendRequest {
            sent_at: at(long_ago),
            ..record_send_request("t", "ben", "old-4", by_content("no-show"), "")
        },
    )
    .await;
    let kept = kept.restart_with(|s| s.gate.retention_days = 0).await;
    let ids: Vec<String> = sends_in_history(&kept, "ben")
        .await
        .into_iter()
        .map(|s| s.send_id)
        .collect();
    assert_eq!(ids, ["new-1", "old-4"]);
}

/// A TCP proxy on 127.0.0.1 in front of `target` that can be unplugged: then its listener is
/// gone (connections are refused) and every connection through it is cut.
struct Plug {
    addr: std::net::SocketAddr,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Plug {
    async fn new(target: String) -> Plug {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let spawned = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let piped = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                spawned.lock().unwrap().push(piped);
            }
        });
        tasks.lock().unwrap().push(accept);
        Plug { addr, tasks }
    }

    fn unplug(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test]
#[ignore = "needs QDRANT_URL"]
async fn on_qdrant_an_opted_out_prospect_is_rejected_when_the_server_refuses_connections() {
    let url = crate::store_contract::qdrant_url();
    let target = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let plug = Plug::new(target).await;
    let dir = tempfile::tempdir().unwrap();
    let collection = crate::store_contract::unique("pertinent-plug");
    let settings = |s: &mut pertinent::config::ServeSettings| {
        s.store.qdrant_url = Some(format!("http://{}", plug.addr));
        s.store.qdrant_collection = collection.clone();
        s.gate.gate_fail_decision = Some(pertinent::config::FailDecision::Send);
        s.gate.allow_fail_send = true;
    };
    let app = spawn_app_in(dir.path(), settings).await;
    seed_tenant(&app, "t").await;
    engage(&app, "eli", "q1", pb::EngagementKind::Unsubscribed, "").await;
    let d = check(&app, check_request("eli", eli_draft(), "q2", None)).await;
    assert!(opted_out(&d), "{d:?}");
    plug.unplug();
    let mut request = tonic::Request::new(check_request("eli", eli_draft(), "q3", None));
    request.set_timeout(Duration::from_secs(3));
    let d = gate(&app)
        .check(request)
        .await
        .expect("an answer")
        .into_inner();
    assert!(opted_out(&d), "{d:?}");
    assert!(
        gate_codes(&d).contains(&ReasonCode::StoreUnavailable),
        "{d:?}"
    );
    // Reads answer UNAVAILABLE, not INTERNAL: the server is away, the request is fine.
    let err = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t".into(),
            id: "ben".into(),
        })
        .await
        .expect_err("no store");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let d = check(
        &app,
        check_request("ben", by_content("access-reviews"), "q4", None),
    )
    .await;
    assert!(is(&d, pb::Decision::Send), "{d:?}");
}
