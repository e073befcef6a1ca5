//! Health (tonic-health) and server reflection.

use pertinent::embedding::Embedder as _;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::*;

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_service() {
    let app = spawn_app().await;
    for service in [
        "",
        "pertinent.v1.ProspectService",
        "pertinent.v1.ContentService",
        "pertinent.v1.ScoringService",
    ] {
        app.wait_serving(service).await;
        let status = app
            .health()
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }
    let unknown = app
        .health()
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let app = spawn_app().await;
    let mut client = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "pertinent.v1.ProspectService",
        "pertinent.v1.ContentService",
        "pertinent.v1.ScoringService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
}

/// A deterministic embedder whose workers can be made to stop, as a crashed model would.
struct Killable {
    inner: pertinent::embedding::hashing::HashingEmbedder,
    dead: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl pertinent::embedding::Embedder for Killable {
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    fn model_id(&self) -> &str {
        "killable"
    }
    async fn embed(
        &self,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, pertinent::embedding::EmbedError> {
        self.inner.embed(texts).await
    }
    async fn health(&self) -> Result<(), pertinent::embedding::EmbedError> {
        if self.dead.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(pertinent::embedding::EmbedError::Stopped);
        }
        Ok(())
    }
}

#[tokio::test]
async fn when_the_model_is_gone_for_good_liveness_fails_too() {
    let dir = tempfile::tempdir().unwrap();
    let model = std::sync::Arc::new(Killable {
        inner: pertinent::embedding::hashing::HashingEmbedder::new(384),
        dead: std::sync::atomic::AtomicBool::new(false),
    });
    let mut app = spawn_on(Model::Hashing, model.clone(), dir.path(), |_| {}).await;
    app.keep(dir);
    assert_eq!(model.dimension(), 384);
    model.dead.store(true, std::sync::atomic::Ordering::SeqCst);
    // Watch the overall service, as a liveness probe does, until it says NOT_SERVING.
    let mut updates = app
        .health()
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health watch")
        .into_inner();
    let mut seen = Vec::new();
    while let Some(update) = updates.message().await.expect("health stream") {
        seen.push(update.status);
        if update.status == ServingStatus::NotServing as i32 {
            break;
        }
    }
    assert_eq!(
        seen.first(),
        Some(&(ServingStatus::Serving as i32)),
        "{seen:?}"
    );
    assert_eq!(
        seen.last(),
        Some(&(ServingStatus::NotServing as i32)),
        "{seen:?}"
    );
    // Readiness went first.
    let ready = app
        .health()
        .check(HealthCheckRequest {
            service: "pertinent.v1.ScoringService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ready.status, ServingStatus::NotServing as i32);
}
