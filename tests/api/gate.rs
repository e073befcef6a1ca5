//! GateService over gRPC: every rule, idempotent retries under concurrency, window edges, dry
//! runs, policy changes, erasure, and the store-unavailable path.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pertinent::grpc::pb;
use pertinent::grpc::pb::ReasonCode;
use pertinent::grpc::pb::gate_service_client::GateServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::*;

const DAY: i64 = 86_400;

pub(crate) fn gate(app: &TestApp) -> GateServiceClient<Channel> {
    GateServiceClient::new(app.channel.clone())
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub(crate) fn at(secs: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    })
}

pub(crate) fn check_request(
    prospect: &str,
    candidate: Option<pb::Candidate>,
    send_id: &str,
    planned: Option<i64>,
) -> pb::CheckRequest {
    pb::CheckRequest {
        tenant: "t".into(),
        prospect_id: prospect.into(),
        candidate,
        send_id: send_id.into(),
        channel: "email".into(),
        planned_at: planned.and_then(at),
        dry_run: false,
    }
}

pub(crate) async fn check(app: &TestApp, request: pb::CheckRequest) -> pb::GateDecision {
    gate(app).check(request).await.expect("check").into_inner()
}

pub(crate) fn gate_codes(d: &pb::GateDecision) -> Vec<ReasonCode> {
    d.reasons
        .iter()
        .map(|r| ReasonCode::try_from(r.code).unwrap())
        .collect()
}

pub(crate) fn is(d: &pb::GateDecision, decision: pb::Decision) -> bool {
    d.decision == decision as i32
}

pub(crate) async fn sends_in_history(app: &TestApp, prospect: &str) -> Vec<pb::SendRecord> {
    gate(app)
        .history(pb::HistoryRequest {
            tenant: "t".into(),
            prospect_id: prospect.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .filter_map(|e| match e.event {
            Some(pb::history_event::Event::Send(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// A draft for Ben that matches his needs but repeats neither the access-reviews piece nor the
/// other drafts (cosine well under the 0.9 repeat threshold).
fn ben_draft(n: u8) -> Option<pb::Candidate> {
    match n {
        1 => by_draft(
            "Ben, SOX access reviews before March",
            "Hi Ben, Helix Bank's quarterly access reviews still run from spreadsheets; automated certification campaigns finish in two days.",
        ),
        _ => by_draft(
            "Ben, proof for the regulator",
            "Hi Ben, the regulator asked Helix Bank who has access to customer data: a trail of every reviewer decision answers that.",
        ),
    }
}

pub(crate) async fn set_policy(app: &TestApp, policy: pb::Policy) -> pb::Policy {
    gate(app)
        .set_policy(pb::SetPolicyRequest {
            tenant: "t".into(),
            policy: Some(policy),
        })
        .await
        .expect("set policy")
        .into_inner()
}

/// Erases ben (his signals, sends and engagements), then upserts a new ben, without signals.
async fn erase_and_bring_back_ben(app: &TestApp) {
    app.prospects()
        .delete_prospect(pb::DeleteProspectRequest {
            tenant: "t".into(),
            id: "ben".into(),
        })
        .await
        .unwrap();
    upsert(app, "t", prospect("ben", "Ben", "Helix Bank", "CISO")).await;
}

/// A cap of `max_sends` a week, with no minimum gap to speak of.
async fn weekly_cap(app: &TestApp, max_sends: u32) {
    set_policy(
        app,
        pb::Policy {
            max_sends,
            window_seconds: (7 * DAY) as u64,
            min_gap_seconds: 1,
            ..Default::default()
        },
    )
    .await;
}

pub(crate) async fn engage(
    app: &TestApp,
    prospect: &str,
    send_id: &str,
    kind: pb::EngagementKind,
    text: &str,
) -> Vec<String> {
    gate(app)
        .record_engagement(pb::EngagementRequest {
            tenant: "t".into(),
            prospect_id: prospect.into(),
            send_id: send_id.into(),
            kind: kind as i32,
            at: None,
            text: text.into(),
        })
        .await
        .expect("record engagement")
        .into_inner()
        .signal_ids
}

#[tokio::test]
async fn a_relevant_send_is_allowed_recorded_once_and_replayed() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let first = check(
        &app,
        check_request("ben", by_content("access-reviews"), "send-1", None),
    )
    .await;
    assert!(is(&first, pb::Decision::Send), "{first:?}");
    assert!(!first.replayed);
    assert_eq!(
        first.result.as_ref().unwrap().candidate_id,
        "access-reviews"
    );
    let again = check(
        &app,
        check_request("ben", by_content("access-reviews"), "send-1", None),
    )
    .await;
    assert!(again.replayed);
    // The whole first answer, score and reasons included.
    assert_eq!(
        pb::GateDecision {
            replayed: false,
            ..again
        },
        first
    );
    let sends = sends_in_history(&app, "ben").await;
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].send_id, "send-1");
    assert_eq!(sends[0].channel, "email");
    assert_eq!(sends[0].decision_id, first.decision_id);
}

#[tokio::test]
async fn twenty_concurrent_retries_record_one_send_and_agree() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let answers = futures::future::join_all((0..20).map(|_| {
        let app = &app;
        async move {
            check(
                app,
                check_request("ana", by_content("slotting-guide"), "retry-me", None),
            )
            .await
        }
    }))
    .await;
    let ids: std::collections::HashSet<&str> =
        answers.iter().map(|a| a.decision_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert!(answers.iter().all(|a| a.decision == answers[0].decision));
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    assert_eq!(sends_in_history(&app, "ana").await.len(), 1);
}

#[tokio::test]
async fn concurrent_checks_of_one_prospect_cannot_break_the_frequency_cap() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    weekly_cap(&app, 1).await;
    // Ten different sends to one prospect at once: each check must see the sends let through
    // before it, so exactly one goes out.
    let answers = futures::future::join_all((0..10).map(|i| {
        let app = &app;
        async move {
            check(
                app,
                check_request(
                    "ana",
                    by_content("slotting-guide"),
                    &format!("burst-{i}"),
                    None,
                ),
            )
            .await
        }
    }))
    .await;
    let sent = answers.iter().filter(|a| is(a, pb::Decision::Send)).count();
    assert_eq!(sent, 1, "{answers:?}");
    assert_eq!(sends_in_history(&app, "ana").await.len(), 1);
}

#[tokio::test]
async fn a_dry_run_records_nothing() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let mut request = check_request("ana", by_content("slotting-guide"), "dry", None);
    request.dry_run = true;
    let dry = check(&app, request).await;
    assert!(is(&dry, pb::Decision::Send));
    assert!(sends_in_history(&app, "ana").await.is_empty());
    // The send id was not used up: a real check decides afresh and records.
    let real = check(
        &app,
        check_request("ana", by_content("slotting-guide"), "dry", None),
    )
    .await;
    assert!(!real.replayed);
    assert_ne!(real.decision_id, dry.decision_id);
    assert_eq!(sends_in_history(&app, "ana").await.len(), 1);
}

#[tokio::test]
async fn the_frequency_cap_and_its_window_edges() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    weekly_cap(&app, 2).await;
    let t0 = now_secs() - 30 * DAY;
    // Different pieces, so that no send repeats another.
    let first = check(
        &app,
        check_request("ben", by_content("access-reviews"), "f1", Some(t0)),
    )
    .await;
    assert!(is(&first, pb::Decision::Send), "{first:?}");
    let second = check(
        &app,
        check_request("ben", ben_draft(2), "f2", Some(t0 + DAY)),
    )
    .await;
    assert!(is(&second, pb::Decision::Send), "{second:?}");
    let third = check(
        &app,
        check_request("ben", ben_draft(1), "f3", Some(t0 + 2 * DAY)),
    )
    .await;
    assert!(is(&third, pb::Decision::Reject), "{third:?}");
    assert_eq!(gate_codes(&third)[0], ReasonCode::FrequencyCap);
    // The window frees when the first send leaves it: exactly seven days after it.
    assert_eq!(third.next_allowed_at.unwrap().seconds, t0 + 7 * DAY);
    let edge = check(
        &app,
        check_request("ben", ben_draft(1), "f4", Some(t0 + 7 * DAY)),
    )
    .await;
    assert!(
        !gate_codes(&edge).contains(&ReasonCode::FrequencyCap),
        "{edge:?}"
    );
    // A rejected check records no send.
    assert_eq!(sends_in_history(&app, "ben").await.len(), 3);
}

#[tokio::test]
async fn the_minimum_gap_between_sends() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    set_policy(
        &app,
        pb::Policy {
            min_gap_seconds: (2 * DAY) as u64,
            ..Default::default()
        },
    )
    .await;
    let t0 = now_secs() - 10 * DAY;
    check(
        &app,
        check_request("ben", by_content("access-reviews"), "g1", Some(t0)),
    )
    .await;
    let soon = check(
        &app,
        check_request("ben", ben_draft(2), "g2", Some(t0 + DAY)),
    )
    .await;
    assert!(is(&soon, pb::Decision::Reject));
    assert_eq!(gate_codes(&soon)[0], ReasonCode::FrequencyCap);
    assert_eq!(soon.next_allowed_at.unwrap().seconds, t0 + 2 * DAY);
    let on_time = check(
        &app,
        check_request("ben", ben_draft(2), "g3", Some(t0 + 2 * DAY)),
    )
    .await;
    assert!(is(&on_time, pb::Decision::Send), "{on_time:?}");
}

#[tokio::test]
async fn a_follow_up_of_the_same_piece_is_a_repeat_naming_the_first_send() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    set_policy(
        &app,
        pb::Policy {
            min_gap_seconds: 1,
            ..Default::default()
        },
    )
    .await;
    let t0 = now_secs() - 5 * DAY;
    let first = check(
        &app,
        check_request("chen", by_content("no-show"), "r1", Some(t0)),
    )
    .await;
    assert!(is(&first, pb::Decision::Send), "{first:?}");
    let follow_up = check(
        &app,
        check_request("chen", by_content("no-show"), "r2", Some(t0 + DAY)),
    )
    .await;
    assert!(is(&follow_up, pb::Decision::Reject));
    assert_eq!(gate_codes(&follow_up)[0], ReasonCode::Repeat);
    assert_eq!(follow_up.repeat_of_send_id, "r1");
}

#[tokio::test]
async fn a_negative_reply_cools_down_and_refuses_the_piece() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let sent = check(
        &app,
        check_request(
            "dara",
            by_content("checkout"),
            "n1",
            Some(now_secs() - 3 * DAY),
        ),
    )
    .await;
    assert!(is(&sent, pb::Decision::Send), "{sent:?}");
    let ids = engage(
        &app,
        "dara",
        "n1",
        pb::EngagementKind::RepliedNegative,
        "Not relevant, we rebuilt checkout last month.",
    )
    .await;
    assert_eq!(
        ids.len(),
        2,
        "the reply and the piece become signals: {ids:?}"
    );
    let next = check(
        &app,
        check_request("dara", by_content("slotting-guide"), "n2", None),
    )
    .await;
    assert!(is(&next, pb::Decision::Reject));
    assert_eq!(gate_codes(&next)[0], ReasonCode::Cooldown);
    assert!(next.next_allowed_at.is_some());
    // The sent piece is now a refused topic for Score too.
    let r = score(&app, "t", "dara", by_content("checkout"))
        .await
        .unwrap();
    assert_eq!(decision(&r), pb::Decision::Reject);
    assert!(codes(&r).contains(&ReasonCode::NegativeTopic), "{r:?}");
}

#[tokio::test]
async fn unsubscribes_and_complaints_opt_out() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    check(
        &app,
        check_request(
            "eli",
            by_draft(
                "Eli, CNC downtime",
                "Hi Eli, vibration sensors at Forge Manufacturing could predict spindle failures.",
            ),
            "u1",
            Some(now_secs() - DAY),
        ),
    )
    .await;
    engage(&app, "eli", "u1", pb::EngagementKind::Unsubscribed, "").await;
    let d = check(
        &app,
        check_request(
            "eli",
            by_draft(
                "Eli, CNC downtime",
                "Hi Eli, a new case study on spindle failures at Forge.",
            ),
            "u2",
            None,
        ),
    )
    .await;
    assert!(is(&d, pb::Decision::Reject));
    assert_eq!(gate_codes(&d)[0], ReasonCode::OptedOut);
}

#[tokio::test]
async fn a_click_strengthens_what_was_sent() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    check(
        &app,
        check_request("ana", by_content("slotting-guide"), "c1", None),
    )
    .await;
    let before = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t".into(),
            id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .signal_count;
    let ids = engage(&app, "ana", "c1", pb::EngagementKind::Clicked, "").await;
    assert_eq!(ids.len(), 1);
    let after = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t".into(),
            id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .signal_count;
    assert_eq!(after, before + 1);
    // Recording the same click again is idempotent.
    engage(&app, "ana", "c1", pb::EngagementKind::Clicked, "").await;
    let again = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t".into(),
            id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .signal_count;
    assert_eq!(again, after);
}

#[tokio::test]
async fn draft_checks_catch_mail_merge_mistakes_and_generic_self_talk() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let dry = |body: &str, id: &str| {
        let mut r = check_request("dara", by_draft("Checkout", body), id, None);
        r.dry_run = true;
        r
    };
    let placeholder = check(
        &app,
        dry(
            "Hi {{first_name}}, Quanta Retail's mobile checkout loses 70% of carts at payment.",
            "d1",
        ),
    )
    .await;
    assert!(is(&placeholder, pb::Decision::Reject));
    assert_eq!(gate_codes(&placeholder)[0], ReasonCode::Placeholder);

    let impersonal = check(&app, dry("Mobile checkout abandonment at the payment step halves with wallet payments; you can cut it too.", "d2")).await;
    assert!(
        gate_codes(&impersonal).contains(&ReasonCode::NoPersonalReference),
        "{impersonal:?}"
    );
    assert!(!is(&impersonal, pb::Decision::Send));

    let selfish = check(&app, dry("Dara, we built our checkout product and our team is proud of us. We won awards for our payment page.", "d3")).await;
    assert!(
        gate_codes(&selfish).contains(&ReasonCode::SelfFocused),
        "{selfish:?}"
    );

    let personal = check(&app, dry("Hi Dara, you said 70% of mobile carts at Quanta Retail are abandoned at payment; wallet payments halved checkout time for a retailer.", "d4")).await;
    assert!(is(&personal, pb::Decision::Send), "{personal:?}");

    // A stricter policy turns findings into rejections.
    set_policy(
        &app,
        pb::Policy {
            draft_check_action: pb::Decision::Reject as i32,
            ..Default::default()
        },
    )
    .await;
    let strict = check(&app, dry("Mobile checkout abandonment at the payment step halves with wallet payments; you can cut it too.", "d5")).await;
    assert!(is(&strict, pb::Decision::Reject), "{strict:?}");
}

#[tokio::test]
async fn a_draft_must_be_clearly_about_its_prospect_but_a_first_touch_goes_to_review() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let dry = |prospect: &str, title: &str, body: &str, id: &str| {
        let mut r = check_request(prospect, by_draft(title, body), id, None);
        r.dry_run = true;
        r
    };
    // An impersonal mass mail on the prospect's topic: scoring lets it through (MATCHED_INTEREST),
    // and its score after the NO_PERSONAL_REFERENCE factor is under the draft line.
    let blast = check(
        &app,
        dry(
            "dara",
            "Checkout tips",
            "Retailers lose carts at the payment step. Book a demo of our checkout platform today.",
            "b1",
        ),
    )
    .await;
    assert!(is(&blast, pb::Decision::Reject), "{blast:?}");
    assert!(
        gate_codes(&blast).contains(&ReasonCode::LowRelevance)
            || gate_codes(&blast).contains(&ReasonCode::Generic),
        "{blast:?}"
    );
    // A prospect of whom nothing is known yet: scoring claims nothing, the draft line does not
    // turn that into a rejection.
    upsert(
        &app,
        "t",
        prospect("new", "Noor Haddad", "Cedar Clinics", "COO"),
    )
    .await;
    let first_touch = check(
        &app,
        dry(
            "new",
            "Noor, a question about Cedar Clinics",
            "Hi Noor, how do Cedar Clinics' front desks handle rescheduling today?",
            "f1",
        ),
    )
    .await;
    assert!(is(&first_touch, pb::Decision::Review), "{first_touch:?}");
    assert!(
        gate_codes(&first_touch).contains(&ReasonCode::InsufficientProfile),
        "{first_touch:?}"
    );
}

#[tokio::test]
async fn policies_are_per_tenant_merged_with_defaults_and_validated() {
    let app = spawn_app().await;
    let default = gate(&app)
        .get_policy(pb::GetPolicyRequest { tenant: "t".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(default.max_sends, 3);
    assert_eq!(default.fail_decision, pb::Decision::Review as i32);
    let set = set_policy(
        &app,
        pb::Policy {
            max_sends: 5,
            fail_decision: pb::Decision::Reject as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(set.max_sends, 5);
    assert_eq!(set.window_seconds, default.window_seconds);
    let got = gate(&app)
        .get_policy(pb::GetPolicyRequest { tenant: "t".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, set);
    let other = gate(&app)
        .get_policy(pb::GetPolicyRequest {
            tenant: "other".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(other, default);
    for (bad, field) in [
        (
            pb::Policy {
                repeat_similarity: 2.0,
                ..Default::default()
            },
            "policy.repeat_similarity",
        ),
        (
            pb::Policy {
                draft_check_action: pb::Decision::Send as i32,
                ..Default::default()
            },
            "policy.draft_check_action",
        ),
        (
            pb::Policy {
                fail_decision: 9,
                ..Default::default()
            },
            "policy.fail_decision",
        ),
    ] {
        let err = gate(&app)
            .set_policy(pb::SetPolicyRequest {
                tenant: "t".into(),
                policy: Some(bad),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(field), "{}", err.message());
    }
    let kept = gate(&app)
        .get_policy(pb::GetPolicyRequest { tenant: "t".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept, set, "a refused policy changes nothing");
}

#[tokio::test]
async fn bad_gate_requests_name_their_field() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let err = gate(&app)
        .check(check_request("ben", by_content("access-reviews"), "", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("send_id"));
    let err = gate(&app)
        .record_engagement(pb::EngagementRequest {
            tenant: "t".into(),
            prospect_id: "ben".into(),
            send_id: "x".into(),
            kind: 0,
            at: None,
            text: String::new(),
        })
        .await
        .unwrap_err();
    assert!(err.message().contains("kind"));
    let err = gate(&app)
        .check(check_request(
            "nobody",
            by_content("access-reviews"),
            "s",
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn erasing_a_prospect_erases_its_sends_engagements_and_decisions() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let first = check(
        &app,
        check_request("ben", by_content("access-reviews"), "e1", None),
    )
    .await;
    engage(&app, "ben", "e1", pb::EngagementKind::Opened, "").await;
    erase_and_bring_back_ben(&app).await;
    let history = gate(&app)
        .history(pb::HistoryRequest {
            tenant: "t".into(),
            prospect_id: "ben".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(history.events.is_empty(), "{history:?}");
    let fresh = check(
        &app,
        check_request("ben", by_content("access-reviews"), "e1", None),
    )
    .await;
    assert!(!fresh.replayed, "the old decision must be gone");
    assert!(!first.replayed);
}

#[tokio::test]
async fn without_a_store_the_gate_answers_its_fail_decision_within_the_deadline() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    app.store.unplug();
    let mut request = tonic::Request::new(check_request(
        "ben",
        by_content("access-reviews"),
        "down-1",
        None,
    ));
    request.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let d = gate(&app)
        .check(request)
        .await
        .expect("an answer, not an error")
        .into_inner();
    assert!(started.elapsed() < Duration::from_millis(300));
    assert!(is(&d, pb::Decision::Review), "{d:?}");
    assert_eq!(gate_codes(&d), vec![ReasonCode::StoreUnavailable]);
    assert!(d.result.is_none());

    // Back again, the gate decides on the history, not the fail decision.
    app.store.plug();
    let d = check(
        &app,
        check_request("ben", by_content("access-reviews"), "down-3", None),
    )
    .await;
    assert!(
        !gate_codes(&d).contains(&ReasonCode::StoreUnavailable),
        "{d:?}"
    );
    assert!(d.result.is_some(), "{d:?}");

    // A configured fail decision is honoured.
    let dir = tempfile::tempdir().unwrap();
    let strict = spawn_app_in(dir.path(), |s| {
        s.gate.gate_fail_decision = Some(pertinent::config::FailDecision::Reject);
    })
    .await;
    seed_tenant(&strict, "t").await;
    strict.store.unplug();
    let d = check(
        &strict,
        check_request("ben", by_content("access-reviews"), "down-2", None),
    )
    .await;
    assert!(is(&d, pb::Decision::Reject), "{d:?}");
}

#[tokio::test]
async fn a_retry_replays_even_after_the_piece_was_deleted() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let first = check(
        &app,
        check_request("chen", by_content("no-show"), "gone-1", None),
    )
    .await;
    app.content()
        .delete_content(pb::DeleteContentRequest {
            tenant: "t".into(),
            id: "no-show".into(),
        })
        .await
        .unwrap();
    let retry = check(
        &app,
        check_request("chen", by_content("no-show"), "gone-1", None),
    )
    .await;
    assert!(retry.replayed);
    assert_eq!(retry.decision_id, first.decision_id);
    // A new send of the deleted piece is NOT_FOUND.
    let err = gate(&app)
        .check(check_request("chen", by_content("no-show"), "gone-2", None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

/// One send to ben an hour ago under a cap of one send a week, then a second check that the
/// cap refuses: (the send's decision, the refusal).
async fn a_send_and_a_refusal(app: &TestApp) -> (pb::GateDecision, pb::GateDecision) {
    weekly_cap(app, 1).await;
    let t0 = now_secs() - 3600;
    let sent = check(
        app,
        check_request("ben", by_content("access-reviews"), "r1", Some(t0)),
    )
    .await;
    assert!(is(&sent, pb::Decision::Send), "{sent:?}");
    let refused = check(app, check_request("ben", ben_draft(1), "r2", Some(t0 + 60))).await;
    assert!(is(&refused, pb::Decision::Reject), "{refused:?}");
    assert_eq!(gate_codes(&refused)[0], ReasonCode::FrequencyCap);
    (sent, refused)
}

#[tokio::test]
async fn a_refusal_is_remembered_for_retries_and_not_written() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let (_, refused) = a_send_and_a_refusal(&app).await;
    // By default only a decision that lets a send through is written (with the send).
    assert!(app.stored_decision("t", "r1").await.is_some());
    assert!(app.stored_decision("t", "r2").await.is_none());
    // A retry gets the first decision although the cap that refused it has been lifted; a new
    // send id is decided under the new policy.
    // The cap lifted to ten a week.
    weekly_cap(&app, 10).await;
    let retry = check(
        &app,
        check_request("ben", ben_draft(1), "r2", Some(now_secs() - 3540)),
    )
    .await;
    assert!(retry.replayed);
    // The whole first answer, score and reasons included.
    assert_eq!(
        pb::GateDecision {
            replayed: false,
            ..retry
        },
        refused
    );
    let fresh = check(
        &app,
        check_request("ben", ben_draft(1), "r3", Some(now_secs() - 3480)),
    )
    .await;
    assert!(!fresh.replayed);
    assert!(
        !gate_codes(&fresh).contains(&ReasonCode::FrequencyCap),
        "{fresh:?}"
    );
}

#[tokio::test]
async fn twenty_concurrent_retries_of_a_refusal_agree() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let (_, refused) = a_send_and_a_refusal(&app).await;
    let answers = futures::future::join_all((0..20).map(|_| {
        let app = &app;
        async move {
            check(
                app,
                check_request("ben", ben_draft(2), "r4", Some(now_secs() - 3500)),
            )
            .await
        }
    }))
    .await;
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    assert!(answers.iter().all(|a| is(a, pb::Decision::Reject)
        && a.decision_id == answers[0].decision_id
        && a.reasons == answers[0].reasons));
    assert_ne!(answers[0].decision_id, refused.decision_id);
    assert_eq!(sends_in_history(&app, "ben").await.len(), 1);
}

#[tokio::test]
async fn after_a_restart_a_send_replays_and_a_refusal_is_decided_again() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let (sent, refused) = a_send_and_a_refusal(&app).await;
    let app = app.restart().await;
    // The send was written: its retry replays it, and records nothing more.
    let retry = check(
        &app,
        check_request("ben", by_content("access-reviews"), "r1", Some(now_secs())),
    )
    .await;
    assert!(retry.replayed, "{retry:?}");
    assert_eq!(retry.decision_id, sent.decision_id);
    assert!(is(&retry, pb::Decision::Send));
    assert_eq!(sends_in_history(&app, "ben").await.len(), 1);
    // The refusal was only remembered: it is decided again, from the same facts, to the same
    // decision under the same id.
    let again = check(
        &app,
        check_request("ben", ben_draft(1), "r2", Some(now_secs() - 3540)),
    )
    .await;
    assert!(!again.replayed);
    assert_eq!(again.decision_id, refused.decision_id);
    assert!(is(&again, pb::Decision::Reject), "{again:?}");
    assert_eq!(gate_codes(&again)[0], ReasonCode::FrequencyCap);
}

#[tokio::test]
async fn recording_every_decision_replays_a_refusal_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let all = |s: &mut pertinent::config::ServeSettings| {
        s.gate.record_decisions = pertinent::config::RecordDecisions::All;
    };
    let app = spawn_app_in(dir.path(), all).await;
    seed_tenant(&app, "t").await;
    let (_, refused) = a_send_and_a_refusal(&app).await;
    assert!(app.stored_decision("t", "r2").await.is_some());
    let app = app.restart_with(all).await;
    // The cap lifted to ten a week.
    weekly_cap(&app, 10).await;
    let retry = check(
        &app,
        check_request("ben", ben_draft(1), "r2", Some(now_secs() - 3540)),
    )
    .await;
    assert!(retry.replayed, "{retry:?}");
    assert_eq!(retry.decision_id, refused.decision_id);
    assert!(is(&retry, pb::Decision::Reject));
}

#[tokio::test]
async fn erasing_a_prospect_forgets_its_remembered_decisions() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let (_, refused) = a_send_and_a_refusal(&app).await;
    erase_and_bring_back_ben(&app).await;
    // The new ben has no sends: the same send id is decided afresh, and no cap applies.
    let fresh = check(
        &app,
        check_request("ben", ben_draft(1), "r2", Some(now_secs() - 3540)),
    )
    .await;
    assert!(!fresh.replayed, "the remembered refusal must be gone");
    assert_eq!(fresh.decision_id, refused.decision_id);
    assert!(
        !gate_codes(&fresh).contains(&ReasonCode::FrequencyCap),
        "{fresh:?}"
    );
}

pub(crate) async fn engage_at(
    app: &TestApp,
    prospect: &str,
    send_id: &str,
    kind: pb::EngagementKind,
    at_secs: i64,
) -> Result<Vec<String>, tonic::Status> {
    gate(app)
        .record_engagement(pb::EngagementRequest {
            tenant: "t".into(),
            prospect_id: prospect.into(),
            send_id: send_id.into(),
            kind: kind as i32,
            at: at(at_secs),
            text: String::new(),
        })
        .await
        .map(|r| r.into_inner().signal_ids)
}

#[tokio::test]
async fn a_later_or_future_dated_event_never_lifts_an_opt_out() {
    // Issue 11, case 1: the rule looked only at the newest opt-out event, and skipped it when
    // it lay after the planned send.
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let now = now_secs();
    engage_at(
        &app,
        "eli",
        "o1",
        pb::EngagementKind::Unsubscribed,
        now - 3600,
    )
    .await
    .expect("an unsubscribe an hour ago");
    // Within the allowed skew (a day) but after the planned send.
    engage_at(
        &app,
        "eli",
        "o2",
        pb::EngagementKind::Complained,
        now + 12 * 3600,
    )
    .await
    .expect("a complaint dated twelve hours ahead");
    // Ten years ahead: refused, naming the field.
    let far = engage_at(
        &app,
        "eli",
        "o3",
        pb::EngagementKind::Complained,
        now + 3650 * DAY,
    )
    .await
    .expect_err("an event ten years ahead is refused");
    assert_eq!(far.code(), tonic::Code::InvalidArgument);
    assert!(far.message().contains("at"), "{far:?}");
    let d = check(
        &app,
        check_request(
            "eli",
            by_draft(
                "Eli, CNC downtime",
                "Hi Eli, vibration sensors at Forge Manufacturing.",
            ),
            "o4",
            None,
        ),
    )
    .await;
    assert!(is(&d, pb::Decision::Reject), "{d:?}");
    assert_eq!(gate_codes(&d)[0], ReasonCode::OptedOut, "{d:?}");
    // A check planned ten years ahead is refused too.
    let planned = gate(&app)
        .check(check_request(
            "eli",
            by_content("slotting-guide"),
            "o5",
            Some(now + 3650 * DAY),
        ))
        .await
        .expect_err("planned ten years ahead");
    assert_eq!(planned.code(), tonic::Code::InvalidArgument);
    assert!(planned.message().contains("planned_at"), "{planned:?}");
}

#[tokio::test]
async fn policy_durations_are_bounded_and_named_when_too_long() {
    // Issue 11, case 2: u64::MAX turned the opt-out off, smaller huge values overflowed.
    // With retention off, the bound is ten years; with it on, no window outlasts it.
    let retained = spawn_app().await;
    let err = gate(&retained)
        .set_policy(pb::SetPolicyRequest {
            tenant: "t".into(),
            policy: Some(pb::Policy {
                window_seconds: 731 * 24 * 3600,
                ..Default::default()
            }),
        })
        .await
        .expect_err("a window longer than the retention period");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("policy.window_seconds"), "{err:?}");
    assert!(err.message().contains("--retention-days"), "{err:?}");
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), |s| s.gate.retention_days = 0).await;
    seed_tenant(&app, "t").await;
    let max = 10 * 366 * 24 * 3600u64;
    for field in [
        "window_seconds",
        "min_gap_seconds",
        "repeat_window_seconds",
        "cooldown_seconds",
        "opt_out_seconds",
    ] {
        for value in [u64::MAX, u64::MAX - 1, i64::MAX as u64 + 1, max + 1] {
            let mut policy = pb::Policy::default();
            match field {
                "window_seconds" => policy.window_seconds = value,
                "min_gap_seconds" => policy.min_gap_seconds = value,
                "repeat_window_seconds" => policy.repeat_window_seconds = value,
                "cooldown_seconds" => policy.cooldown_seconds = value,
                _ => policy.opt_out_seconds = value,
            }
            let err = gate(&app)
                .set_policy(pb::SetPolicyRequest {
                    tenant: "t".into(),
                    policy: Some(policy),
                })
                .await
                .expect_err("too long a duration");
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{field}={value}");
            assert!(
                err.message().contains(&format!("policy.{field}")),
                "{field}={value}: {err:?}"
            );
        }
    }
    // The longest allowed opt-out still opts out (it was cast to a negative number before).
    set_policy(
        &app,
        pb::Policy {
            opt_out_seconds: max,
            cooldown_seconds: max,
            window_seconds: max,
            repeat_window_seconds: max,
            ..Default::default()
        },
    )
    .await;
    engage(&app, "eli", "m1", pb::EngagementKind::Unsubscribed, "").await;
    let d = check(
        &app,
        check_request("eli", by_content("slotting-guide"), "m2", None),
    )
    .await;
    assert_eq!(gate_codes(&d)[0], ReasonCode::OptedOut, "{d:?}");
    // Nothing stored changed with the refused policies.
    let stored = gate(&app)
        .get_policy(pb::GetPolicyRequest { tenant: "t".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.opt_out_seconds, max);
}

#[tokio::test]
async fn a_negative_reply_to_a_long_send_id_still_refuses_the_piece() {
    // Issue 11, case 8: the derived signal id passed the 128-byte limit and was dropped.
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let long = format!("campaign-2026-spring/{}", "x".repeat(100));
    assert!(long.len() <= 128 && long.len() > 100);
    let sent = check(
        &app,
        check_request(
            "dara",
            by_content("checkout"),
            &long,
            Some(now_secs() - 3 * DAY),
        ),
    )
    .await;
    assert!(is(&sent, pb::Decision::Send), "{sent:?}");
    let ids = engage(
        &app,
        "dara",
        &long,
        pb::EngagementKind::RepliedNegative,
        "Not relevant, we rebuilt checkout last month.",
    )
    .await;
    assert_eq!(
        ids.len(),
        2,
        "the reply and the piece become signals: {ids:?}"
    );
    assert!(ids.iter().all(|id| id.len() <= 128), "{ids:?}");
    let r = score(&app, "t", "dara", by_content("checkout"))
        .await
        .unwrap();
    assert!(codes(&r).contains(&ReasonCode::NegativeTopic), "{r:?}");
    // The same reaction again replaces its signals rather than adding more.
    let again = engage(
        &app,
        "dara",
        &long,
        pb::EngagementKind::RepliedNegative,
        "Not relevant, we rebuilt checkout last month.",
    )
    .await;
    assert_eq!(again, ids);
}
