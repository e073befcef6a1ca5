//! Several replicas of the service on one Qdrant collection, in this test process: what they
//! must decide as one. (Caps and repeats across replicas are not exact yet: docs/reliability.md.)

use pertinent::grpc::pb;
use pertinent::grpc::pb::gate_service_client::GateServiceClient;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs QDRANT_URL"]
async fn one_send_id_sent_to_three_replicas_at_once_gets_one_decision() {
    let url = crate::store_contract::qdrant_url();
    let collection = crate::store_contract::unique("pertinent-replicas");
    let mut replicas = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let mut app = spawn_app_in(dir.path(), |s| {
            s.store.qdrant_url = Some(url.clone());
            s.store.qdrant_collection = collection.clone();
        })
        .await;
        app.keep(dir);
        replicas.push(app);
    }
    seed_tenant(&replicas[0], "t").await;
    for n in 0..10 {
        let send_id = format!("same-{n}");
        let calls: Vec<_> = replicas
            .iter()
            .map(|app| {
                let mut gate = GateServiceClient::new(app.channel.clone());
                let request = pb::CheckRequest {
                    tenant: "t".into(),
                    prospect_id: "ben".into(),
                    candidate: by_content("access-reviews"),
                    send_id: send_id.clone(),
                    channel: "email".into(),
                    planned_at: None,
                    dry_run: false,
                };
                tokio::spawn(async move { gate.check(request).await.map(|r| r.into_inner()) })
            })
            .collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await.unwrap().expect("a decision"));
        }
        let first: Vec<_> = answers.iter().filter(|d| !d.replayed).collect();
        assert_eq!(
            first.len(),
            1,
            "{send_id}: one replica decides, the others replay it: {answers:?}"
        );
        for d in &answers {
            assert_eq!(d.decision, first[0].decision, "{send_id}: {answers:?}");
            assert_eq!(d.reasons, first[0].reasons, "{send_id}: {answers:?}");
            assert_eq!(d.decision_id, first[0].decision_id, "{send_id}");
        }
    }
}
