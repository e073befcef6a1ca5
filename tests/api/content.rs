//! ContentService: register, get, delete.

use pertinent::grpc::pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn register_get_replace_and_delete() {
    let app = spawn_plumbing_app().await;
    let mut piece = content_piece(
        "c1",
        pb::ContentKind::CaseStudy,
        "How Helix Bank automated access reviews",
        "From spreadsheets to two-day certifications.",
    );
    piece.tags = vec!["security".into(), "banking".into()];
    let stored = register(&app, "t1", piece.clone()).await;
    assert_eq!(stored, piece);

    let got = app
        .content()
        .get_content(pb::GetContentRequest {
            tenant: "t1".into(),
            id: "c1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, piece);

    // Registering the same id again replaces the piece.
    let mut replaced = piece.clone();
    replaced.title = "Helix Bank: access reviews in two days".into();
    register(&app, "t1", replaced.clone()).await;
    let got = app
        .content()
        .get_content(pb::GetContentRequest {
            tenant: "t1".into(),
            id: "c1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.title, replaced.title);

    let deleted = app
        .content()
        .delete_content(pb::DeleteContentRequest {
            tenant: "t1".into(),
            id: "c1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    let err = app
        .content()
        .get_content(pb::GetContentRequest {
            tenant: "t1".into(),
            id: "c1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Scoring a deleted piece is NOT_FOUND too (no stale cache).
    upsert(&app, "t1", prospect("p", "P", "Co", "CTO")).await;
    let err = score(&app, "t1", "p", by_content("c1")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}
