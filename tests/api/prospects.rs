//! ProspectService: prospects, signals, idempotent re-sends, erasure, tenant isolation.

use pertinent::grpc::pb;
use pertinent::grpc::pb::SignalSource::*;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn upsert_get_and_signal_counts() {
    let app = spawn_plumbing_app().await;
    let mut p = prospect("p1", "Ana Ruiz", "Northwind", "VP Operations");
    p.attributes.insert("region".into(), "EMEA".into());
    let stored = upsert(&app, "t1", p).await;
    assert_eq!(stored.id, "p1");
    assert_eq!(stored.signal_count, 0);
    assert_eq!(
        stored.attributes.get("region").map(String::as_str),
        Some("EMEA")
    );

    let added = add_signals(
        &app,
        "t1",
        "p1",
        vec![
            signal(
                "s1",
                CallNote,
                "We re-slot the warehouse by hand every quarter.",
            ),
            signal(
                "s2",
                ForumPost,
                "Pick paths in our mezzanine are far too long.",
            ),
        ],
    )
    .await;
    assert_eq!((added.added, added.replaced, added.signal_count), (2, 0, 2));

    // Re-sending a signal id replaces it: the count does not grow.
    let again = add_signals(
        &app,
        "t1",
        "p1",
        vec![
            signal(
                "s2",
                ForumPost,
                "Pick paths on our mezzanine are still too long.",
            ),
            signal(
                "s3",
                Survey,
                "Top priority this year: labour cost per order.",
            ),
        ],
    )
    .await;
    assert_eq!((again.added, again.replaced, again.signal_count), (1, 1, 3));

    let got = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t1".into(),
            id: "p1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name, "Ana Ruiz");
    assert_eq!(got.signal_count, 3);

    // Upserting the descriptive fields keeps the signals.
    let renamed = upsert(
        &app,
        "t1",
        prospect("p1", "Ana Ruiz-Lopez", "Northwind", "COO"),
    )
    .await;
    assert_eq!(renamed.signal_count, 3);
    assert_eq!(renamed.role, "COO");

    let deleted = app
        .prospects()
        .delete_signals(pb::DeleteSignalsRequest {
            tenant: "t1".into(),
            prospect_id: "p1".into(),
            ids: vec!["s1".into(), "no-such-signal".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((deleted.deleted, deleted.signal_count), (1, 2));
}

#[tokio::test]
async fn delete_prospect_erases_everything_it_owned() {
    let app = spawn_plumbing_app().await;
    seed_tenant(&app, "t1").await;
    let before = score(&app, "t1", "ana", by_content("slotting-guide")).await;
    assert!(before.is_ok());

    let gone = app
        .prospects()
        .delete_prospect(pb::DeleteProspectRequest {
            tenant: "t1".into(),
            id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(gone.deleted);
    assert_eq!(gone.signals_deleted, 3);

    let get = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t1".into(),
            id: "ana".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    let scored = score(&app, "t1", "ana", by_content("slotting-guide"))
        .await
        .unwrap_err();
    assert_eq!(scored.code(), Code::NotFound);

    // A new prospect with the same id starts from nothing: no signal survived.
    let reborn = upsert(&app, "t1", prospect("ana", "Ana", "Northwind", "VP")).await;
    assert_eq!(reborn.signal_count, 0);
    let cold = score(&app, "t1", "ana", by_content("slotting-guide"))
        .await
        .unwrap();
    assert_eq!(codes(&cold), vec![pb::ReasonCode::InsufficientProfile]);

    // Deleting again is not an error, and says nothing was there.
    app.prospects()
        .delete_prospect(pb::DeleteProspectRequest {
            tenant: "t1".into(),
            id: "ghost".into(),
        })
        .await
        .map(|r| assert!(!r.into_inner().deleted))
        .unwrap();
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let app = spawn_plumbing_app().await;
    seed_tenant(&app, "acme").await;
    let other = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "globex".into(),
            id: "ana".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    let content = score(&app, "globex", "ana", by_content("slotting-guide"))
        .await
        .unwrap_err();
    assert_eq!(content.code(), Code::NotFound);

    // Same ids in another tenant are separate records.
    upsert(
        &app,
        "globex",
        prospect("ana", "Other Ana", "Globex", "CFO"),
    )
    .await;
    let mine = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "acme".into(),
            id: "ana".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.name, "Ana Ruiz");
    assert_eq!(mine.signal_count, 3);

    // An audience search in one tenant finds none of the other's prospects.
    let audience = app
        .scoring()
        .find_audience(pb::FindAudienceRequest {
            tenant: "globex".into(),
            candidate: by_draft(
                "Warehouse slotting",
                "Re-slot SKUs weekly from demand data.",
            ),
            limit: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(audience.members.iter().all(|m| m.prospect_id == "ana"));
    assert!(audience.members.len() <= 1);
}

#[tokio::test]
async fn signals_for_an_unknown_prospect_are_not_found() {
    let app = spawn_plumbing_app().await;
    let err = app
        .prospects()
        .add_signals(pb::AddSignalsRequest {
            tenant: "t1".into(),
            prospect_id: "nobody".into(),
            signals: vec![signal("s1", CallNote, "Anything at all.")],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}
