//! One contract for every `VectorStore` adapter: the embedded SQLite store always, a real
//! Qdrant when QDRANT_URL is set (it must point at this machine: 127.0.0.1 or localhost).

use std::collections::BTreeMap;
use std::sync::Arc;

use pertinent::domain::{
    ContentId, ContentKind, ContentRecord, EngagementKind, EngagementRecord, Polarity, ProspectId,
    ProspectRecord, SendId, SendRecord, SignalId, SignalRecord, SignalSource, Tenant, Text, Weight,
};
use pertinent::store::qdrant::{QdrantOptions, QdrantStore};
use pertinent::store::sqlite::SqliteStore;
use pertinent::store::{HistoryWindow, StoreError, VectorStore};

const DIM: usize = 384;

/// A unit vector pointing mostly along axis `axis`, a little along `axis + 1`.
fn vector(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[axis % DIM] = 1.0;
    v[(axis + 1) % DIM] = tilt;
    let n = (1.0 + tilt * tilt).sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn pid(s: &str) -> ProspectId {
    ProspectId::parse(s).unwrap()
}

fn prospect(id: &str) -> ProspectRecord {
    ProspectRecord {
        id: pid(id),
        name: format!("Name of {id}"),
        company: "Co".into(),
        role: "CTO".into(),
        attributes: BTreeMap::from([("tier".to_owned(), "1".to_owned())]),
    }
}

fn signal(id: &str, polarity: Polarity, axis: usize) -> SignalRecord {
    SignalRecord {
        id: SignalId::parse(id).unwrap(),
        source: SignalSource::CallNote,
        polarity,
        observed_at: 1_700_000_000_000,
        weight: Weight::parse(2.0).unwrap(),
        text: Text::parse(format!("text of {id}"), 1000).unwrap(),
        vector: vector(axis, 0.1),
    }
}

/// The contract, run against one adapter. `tenant` is unique per run so that runs against a
/// shared Qdrant never see each other's points.
async fn contract(store: Arc<dyn VectorStore>, tenant: &str) {
    let t = Tenant::parse(tenant).unwrap();
    let other = Tenant::parse(format!("{tenant}-other")).unwrap();
    store.health().await.expect("health");

    // Prospects.
    assert!(store.get_prospect(&t, &pid("p1")).await.unwrap().is_none());
    store.upsert_prospect(&t, &prospect("p1")).await.unwrap();
    let got = store.get_prospect(&t, &pid("p1")).await.unwrap().unwrap();
    assert_eq!(got.prospect, prospect("p1"));
    assert_eq!(got.signal_count, 0);
    assert!(
        store
            .get_prospect(&other, &pid("p1"))
            .await
            .unwrap()
            .is_none()
    );

    // Signals: insert, replace by id, read back by key with vectors intact.
    let w = store
        .upsert_signals(
            &t,
            &pid("p1"),
            &[
                signal("a", Polarity::Positive, 1),
                signal("b", Polarity::Negative, 2),
            ],
        )
        .await
        .unwrap();
    assert_eq!((w.added, w.replaced, w.total), (2, 0, 2));
    let mut replaced = signal("b", Polarity::Positive, 3);
    replaced.weight = Weight::parse(0.5).unwrap();
    let w = store
        .upsert_signals(
            &t,
            &pid("p1"),
            &[replaced.clone(), signal("c", Polarity::Positive, 4)],
        )
        .await
        .unwrap();
    assert_eq!((w.added, w.replaced, w.total), (1, 1, 3));
    let signals = store
        .prospect_signals(&t, &pid("p1"))
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<&str> = signals.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(signals[1], replaced);
    assert!(signals.iter().all(|s| s.vector.len() == DIM));
    assert!(
        store
            .prospect_signals(&other, &pid("p1"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store
            .upsert_signals(&t, &pid("ghost"), &[signal("x", Polarity::Positive, 1)])
            .await,
        Err(StoreError::MissingProspect)
    ));

    // A write that fails halfway leaves nothing behind: the good first signal is not kept.
    let mut wrong = signal("z2", Polarity::Positive, 5);
    wrong.vector.truncate(10);
    let half = [signal("z1", Polarity::Positive, 5), wrong];
    assert!(matches!(
        store.upsert_signals(&t, &pid("p1"), &half).await,
        Err(StoreError::DimensionMismatch { .. })
    ));
    let after = store
        .prospect_signals(&t, &pid("p1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.len(), 3, "a failed write must change nothing");

    let (deleted, remaining) = store
        .delete_signals(
            &t,
            &pid("p1"),
            &[
                SignalId::parse("a").unwrap(),
                SignalId::parse("zzz").unwrap(),
            ],
        )
        .await
        .unwrap();
    assert_eq!((deleted, remaining), (1, 2));

    // Nearest prospects by positive signals, best first; other tenants invisible.
    store.upsert_prospect(&t, &prospect("p2")).await.unwrap();
    store
        .upsert_signals(
            &t,
            &pid("p2"),
            &[
                signal("m", Polarity::Positive, 10),
                signal("n", Polarity::Negative, 20),
            ],
        )
        .await
        .unwrap();
    store
        .upsert_prospect(&other, &prospect("p9"))
        .await
        .unwrap();
    store
        .upsert_signals(&other, &pid("p9"), &[signal("m", Polarity::Positive, 10)])
        .await
        .unwrap();
    let near = store
        .nearest_prospects(&t, &vector(10, 0.0), 5)
        .await
        .unwrap();
    assert_eq!(near[0].0, pid("p2"));
    assert!(near[0].1 > 0.9);
    assert!(near.iter().all(|(id, _)| id != &pid("p9")));
    // Negative signals are not candidates: nothing of p2 is near axis 20.
    let near = store
        .nearest_prospects(&t, &vector(20, 0.0), 5)
        .await
        .unwrap();
    assert!(near.iter().all(|(_, s)| *s < 0.5), "{near:?}");

    // Counting and sampling.
    assert_eq!(store.prospect_count(&t).await.unwrap(), 2);
    let sample = store.sample_prospects(&t, 10).await.unwrap();
    assert_eq!(sample.len(), 2);
    let one = store.sample_prospects(&t, 1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert!(sample.contains(&one[0]));

    // Content.
    let piece = ContentRecord {
        id: ContentId::parse("c1").unwrap(),
        kind: ContentKind::Webinar,
        title: "Title".into(),
        body: Text::parse("Body".into(), 100).unwrap(),
        tags: vec!["x".into(), "y".into()],
        vector: vector(7, 0.3),
    };
    store.upsert_content(&t, &piece).await.unwrap();
    assert_eq!(
        store.get_content(&t, &piece.id).await.unwrap().unwrap(),
        piece
    );
    assert!(
        store
            .get_content(&other, &piece.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.delete_content(&t, &piece.id).await.unwrap());
    assert!(!store.delete_content(&t, &piece.id).await.unwrap());
    assert!(store.get_content(&t, &piece.id).await.unwrap().is_none());

    // The gate's records: sends newest first and filtered by time, engagements replaced per
    // (send, kind), decisions kept first-wins, policies per tenant.
    let send = |id: &str, at: i64| SendRecord {
        send_id: SendId::parse(id).unwrap(),
        decision_id: format!("d-{id}"),
        candidate_id: "c1".into(),
        channel: "email".into(),
        sent_at: at,
        text: format!("sent {id}"),
        vector: vector(30, 0.2),
    };
    let sid = |id: &str| SendId::parse(id).unwrap();
    let a = send("a", 1_000);
    assert_eq!(store.get_decision(&t, &sid("a")).await.unwrap(), None);
    let (p1, sa, sb, sc) = (pid("p1"), sid("a"), sid("b"), sid("c"));
    let first = store.record_decision(&t, &p1, &sa, "first", 1_000, Some(&a));
    assert_eq!(first.await.unwrap(), None);
    let b = send("b", 3_000);
    let second = store.record_decision(&t, &p1, &sb, "sent b", 3_000, Some(&b));
    assert_eq!(second.await.unwrap(), None);
    // A retry writes nothing (not even its send) and returns the first decision.
    let retry = send("a", 9_000);
    let again = store.record_decision(&t, &p1, &sa, "second", 9_000, Some(&retry));
    assert_eq!(again.await.unwrap().as_deref(), Some("first"));
    // A decision that let nothing through records no send.
    let rejected = store.record_decision(&t, &p1, &sc, "rejected", 4_000, None);
    assert_eq!(rejected.await.unwrap(), None);
    let ghost = send("x", 1);
    assert!(matches!(
        store
            .record_decision(&t, &pid("ghost"), &sid("x"), "d", 1, Some(&ghost))
            .await,
        Err(StoreError::MissingProspect)
    ));
    assert!(matches!(
        store
            .record_decision(&t, &pid("ghost"), &sid("y"), "d", 1, None)
            .await,
        Err(StoreError::MissingProspect)
    ));
    assert_eq!(store.get_decision(&t, &sid("y")).await.unwrap(), None);
    let all = store.sends(&t, &pid("p1"), i64::MIN, 10).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.send_id.as_str()).collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(all[1], a);
    let recent = store.sends(&t, &pid("p1"), 2_000, 10).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert!(
        store
            .sends(&other, &pid("p1"), i64::MIN, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let engagement = |kind, at| EngagementRecord {
        send_id: sid("a"),
        kind,
        at,
    };
    store
        .record_engagement(&t, &pid("p1"), &engagement(EngagementKind::Opened, 5))
        .await
        .unwrap();
    store
        .record_engagement(&t, &pid("p1"), &engagement(EngagementKind::Opened, 7))
        .await
        .unwrap();
    store
        .record_engagement(&t, &pid("p1"), &engagement(EngagementKind::Clicked, 6))
        .await
        .unwrap();
    let reactions = store.engagements(&t, &pid("p1"), 10).await.unwrap();
    assert_eq!(
        reactions,
        [
            engagement(EngagementKind::Opened, 7),
            engagement(EngagementKind::Clicked, 6)
        ]
    );
    // What the gate reads, by time window: sends (their texts may be left out) and negative
    // replies only, each newest first, at most `limit`.
    let window = |sends_since, replies_since, limit| HistoryWindow {
        sends_since,
        replies_since,
        limit,
    };
    let without_text = |s: &SendRecord| SendRecord {
        text: String::new(),
        ..s.clone()
    };
    let read = store
        .gate_history(&t, &pid("p1"), &window(i64::MIN, i64::MIN, 10))
        .await
        .unwrap();
    assert_eq!(
        read.sends.iter().map(without_text).collect::<Vec<_>>(),
        all.iter().map(without_text).collect::<Vec<_>>()
    );
    assert!(read.replies.is_empty(), "opens and clicks are not read");
    let negative = |id: &str, at| EngagementRecord {
        send_id: sid(id),
        kind: EngagementKind::RepliedNegative,
        at,
    };
    for (id, at) in [("a", 100), ("b", 200), ("c", 300)] {
        store
            .record_engagement(&t, &pid("p1"), &negative(id, at))
            .await
            .unwrap();
    }
    let read = store
        .gate_history(&t, &pid("p1"), &window(2_000, 150, 10))
        .await
        .unwrap();
    let ids: Vec<&str> = read.sends.iter().map(|s| s.send_id.as_str()).collect();
    assert_eq!(ids, ["b"]);
    assert_eq!(read.replies, [negative("c", 300), negative("b", 200)]);
    let newest = store
        .gate_history(&t, &pid("p1"), &window(i64::MIN, i64::MIN, 1))
        .await
        .unwrap();
    assert_eq!(newest.sends.len(), 1);
    assert_eq!(newest.replies, [negative("c", 300)]);
    let none = store
        .gate_history(&t, &pid("p2"), &window(i64::MIN, i64::MIN, 10))
        .await
        .unwrap();
    assert!(none.sends.is_empty() && none.replies.is_empty());

    // Sends recorded without a Check: once per send id, first wins, for an existing prospect.
    let reviewed = send("r", 5_000);
    assert_eq!(
        store.record_send(&t, &pid("p1"), &reviewed).await.unwrap(),
        None
    );
    let again = send("r", 6_000);
    assert_eq!(
        store.record_send(&t, &pid("p2"), &again).await.unwrap(),
        Some((pid("p1"), reviewed.clone()))
    );
    assert_eq!(
        store.record_send(&t, &pid("p1"), &a).await.unwrap(),
        Some((pid("p1"), a.clone())),
        "a send recorded with its decision is taken too"
    );
    assert!(matches!(
        store.record_send(&t, &pid("ghost"), &send("g", 1)).await,
        Err(StoreError::MissingProspect)
    ));
    let listed = store.sends(&t, &pid("p1"), 4_000, 10).await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&reviewed));
    assert!(
        store
            .sends(&t, &pid("p2"), i64::MIN, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        store.get_decision(&t, &sid("a")).await.unwrap().as_deref(),
        Some("first")
    );
    assert_eq!(
        store.get_decision(&t, &sid("c")).await.unwrap().as_deref(),
        Some("rejected")
    );
    assert_eq!(store.get_decision(&other, &sid("a")).await.unwrap(), None);

    assert_eq!(store.get_policy(&t).await.unwrap(), None);
    store.put_policy(&t, "{\"max_sends\":5}").await.unwrap();
    store.put_policy(&t, "{\"max_sends\":6}").await.unwrap();
    assert_eq!(
        store.get_policy(&t).await.unwrap().as_deref(),
        Some("{\"max_sends\":6}")
    );
    assert_eq!(store.get_policy(&other).await.unwrap(), None);

    // The suppression list: per tenant, by key, and it belongs to no prospect.
    assert_eq!(store.get_suppression(&t, "k1").await.unwrap(), None);
    store
        .put_suppression(&t, "k1", "{\"since\":1}")
        .await
        .unwrap();
    store
        .put_suppression(&t, "k1", "{\"since\":2}")
        .await
        .unwrap();
    store
        .put_suppression(&t, "k2", "{\"since\":3}")
        .await
        .unwrap();
    store
        .put_suppression(&other, "k1", "{\"since\":4}")
        .await
        .unwrap();
    assert_eq!(
        store.get_suppression(&t, "k1").await.unwrap().as_deref(),
        Some("{\"since\":2}")
    );
    let mine = |all: Vec<(Tenant, String, String)>| {
        all.into_iter()
            .filter(|(owner, _, _)| owner == &t || owner == &other)
            .map(|(owner, key, entry)| (owner.to_string(), key, entry))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let listed = mine(store.suppressions().await.unwrap());
    let expected = [
        (tenant.to_string(), "k1", "{\"since\":2}"),
        (tenant.to_string(), "k2", "{\"since\":3}"),
        (other.to_string(), "k1", "{\"since\":4}"),
    ]
    .map(|(a, b, c)| (a, b.to_owned(), c.to_owned()));
    assert_eq!(listed, expected.into_iter().collect());
    assert!(store.delete_suppression(&t, "k2").await.unwrap());
    assert!(!store.delete_suppression(&t, "k2").await.unwrap());

    // A secret is made once and the same for every later caller.
    let secret = store.secret("contract-test").await.unwrap();
    assert_eq!(secret.len(), 64);
    assert_eq!(store.secret("contract-test").await.unwrap(), secret);
    assert_ne!(store.secret("contract-test-2").await.unwrap(), secret);

    // Retention: what is dated before the cut goes; prospects, signals, policies and the
    // suppression list stay.
    let before = store
        .sends(&t, &pid("p1"), i64::MIN, 10)
        .await
        .unwrap()
        .len();
    let purged = store.purge_before(2_000).await.unwrap();
    // Send a and its decision (1_000), and the five engagements (at 6 to 300); the store may
    // hold older records of other tests' tenants too.
    assert!(purged >= 7, "{purged}");
    let kept = store.sends(&t, &pid("p1"), i64::MIN, 10).await.unwrap();
    assert_eq!(kept.len(), before - 1);
    assert!(kept.iter().all(|s| s.sent_at >= 2_000));
    assert!(
        store
            .engagements(&t, &pid("p1"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.get_decision(&t, &sid("a")).await.unwrap(), None);
    assert_eq!(
        store.get_decision(&t, &sid("b")).await.unwrap().as_deref(),
        Some("sent b")
    );
    assert!(store.get_suppression(&t, "k1").await.unwrap().is_some());
    assert!(store.get_policy(&t).await.unwrap().is_some());
    assert_eq!(
        store
            .prospect_signals(&t, &pid("p1"))
            .await
            .unwrap()
            .unwrap()
            .len(),
        2
    );

    // Erasure takes the signals with it and nothing of anyone else's.
    assert_eq!(
        store.delete_prospect(&t, &pid("p1")).await.unwrap(),
        Some(2)
    );
    assert_eq!(store.delete_prospect(&t, &pid("p1")).await.unwrap(), None);
    assert!(
        store
            .prospect_signals(&t, &pid("p1"))
            .await
            .unwrap()
            .is_none()
    );
    store.upsert_prospect(&t, &prospect("p1")).await.unwrap();
    assert_eq!(
        store
            .get_prospect(&t, &pid("p1"))
            .await
            .unwrap()
            .unwrap()
            .signal_count,
        0
    );
    assert_eq!(
        store
            .get_prospect(&t, &pid("p2"))
            .await
            .unwrap()
            .unwrap()
            .signal_count,
        2
    );
    assert_eq!(
        store
            .get_prospect(&other, &pid("p9"))
            .await
            .unwrap()
            .unwrap()
            .signal_count,
        1
    );

    // Erasure leaves the suppression list as it was.
    assert!(store.get_suppression(&t, "k1").await.unwrap().is_some());

    // Clean up (matters on a shared Qdrant).
    for (tenant, id) in [(&t, "p1"), (&t, "p2"), (&other, "p9")] {
        store.delete_prospect(tenant, &pid(id)).await.unwrap();
    }
    for (tenant, key) in [(&t, "k1"), (&other, "k1")] {
        store.delete_suppression(tenant, key).await.unwrap();
    }
}

#[tokio::test]
async fn sqlite_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path(), DIM).unwrap());
    contract(store, "contract").await;
}

#[tokio::test]
async fn sqlite_store_refuses_another_dimension_and_a_closed_store_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), DIM).unwrap();
    store.close();
    assert!(matches!(
        store.health().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        SqliteStore::open(dir.path(), 128),
        Err(StoreError::DimensionMismatch {
            expected: 128,
            found: 384
        })
    ));
}

/// The Qdrant URL to test against. The Qdrant tests are ignored unless the test script runs
/// them (`--include-ignored` when QDRANT_URL is set); run without it, they fail loudly.
pub(crate) fn qdrant_url() -> String {
    let url = std::env::var("QDRANT_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("the Qdrant tests need QDRANT_URL (e.g. http://127.0.0.1:6334)");
    let host_ok = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|p| url.starts_with(p));
    assert!(
        host_ok,
        "QDRANT_URL must point at this machine (127.0.0.1), not {url}"
    );
    url
}

pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}")
}

#[tokio::test]
#[ignore = "needs QDRANT_URL"]
async fn qdrant_store_meets_the_contract() {
    let url = qdrant_url();
    let options = QdrantOptions {
        url,
        api_key: None,
        collection: unique("pertinent-contract"),
        timeout: std::time::Duration::from_secs(5),
    };
    let store = Arc::new(QdrantStore::connect(&options, DIM).await.unwrap());
    contract(store, &unique("contract")).await;
    // A second connection to the same collection with another vector size is refused.
    assert!(matches!(
        QdrantStore::connect(&options, 128).await,
        Err(StoreError::DimensionMismatch {
            expected: 128,
            found: 384
        })
    ));
}

/// The whole service on Qdrant: scoring, audience and the gate over gRPC.
#[tokio::test]
#[ignore = "needs QDRANT_URL"]
async fn the_service_runs_end_to_end_on_qdrant() {
    use crate::helpers::*;
    use pertinent::grpc::pb;
    let url = qdrant_url();
    let dir = tempfile::tempdir().unwrap();
    let collection = unique("pertinent-e2e");
    let app = spawn_app_in(dir.path(), |s| {
        s.store.qdrant_url = Some(url.clone());
        s.store.qdrant_collection = collection.clone();
    })
    .await;
    seed_tenant(&app, "t").await;
    let r = score(&app, "t", "ben", by_content("access-reviews"))
        .await
        .unwrap();
    assert_ne!(decision(&r), pb::Decision::Reject, "{r:?}");
    let blast = score(&app, "t", "ben", by_content("company-news"))
        .await
        .unwrap();
    // As on SQLite (scoring.rs): in a five-prospect tenant the blast can land just above the
    // line for ben ("quarterly"), REVIEW, never SEND, and well under the piece for him.
    assert_ne!(decision(&blast), pb::Decision::Send, "{blast:?}");
    assert!(blast.score < r.score, "{blast:?} against {r:?}");
    let audience = app
        .scoring()
        .find_audience(pb::FindAudienceRequest {
            tenant: "t".into(),
            candidate: by_content("no-show"),
            limit: 3,
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(audience[0].prospect_id, "chen");
    let mut gate = pb::gate_service_client::GateServiceClient::new(app.channel.clone());
    let check = pb::CheckRequest {
        tenant: "t".into(),
        prospect_id: "ana".into(),
        candidate: by_content("slotting-guide"),
        send_id: "q-1".into(),
        channel: "email".into(),
        planned_at: None,
        dry_run: false,
    };
    let first = gate.check(check.clone()).await.unwrap().into_inner();
    let again = gate.check(check).await.unwrap().into_inner();
    assert!(again.replayed && again.decision_id == first.decision_id);
    let history = gate
        .history(pb::HistoryRequest {
            tenant: "t".into(),
            prospect_id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.events.len(), 1);
    let deleted = app
        .prospects()
        .delete_prospect(pb::DeleteProspectRequest {
            tenant: "t".into(),
            id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
}
