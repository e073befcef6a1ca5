//! The embedded store keeps everything across a restart of the service.

use pertinent::grpc::pb;

use crate::helpers::*;

#[tokio::test]
async fn data_survives_a_restart() {
    let app = spawn_app().await;
    seed_tenant(&app, "t").await;
    let before = score(&app, "t", "ben", by_content("access-reviews"))
        .await
        .unwrap();

    let app = app.restart().await;
    let ben = app
        .prospects()
        .get_prospect(pb::GetProspectRequest {
            tenant: "t".into(),
            id: "ben".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ben.signal_count, 2);
    assert_eq!(ben.company, "Helix Bank");
    let after = score(&app, "t", "ben", by_content("access-reviews"))
        .await
        .unwrap();
    assert_eq!(before.decision, after.decision);
    assert!(
        (before.score - after.score).abs() < 1e-4,
        "{before:?} vs {after:?}"
    );
    assert_eq!(before.evidence, after.evidence);
}
