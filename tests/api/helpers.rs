//! `spawn_app` and fixtures shared by the integration tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pertinent::config::{ServeSettings, StoreOptions};
use pertinent::embedding::Embedder;
use pertinent::embedding::fastembed::FastembedEmbedder;
use pertinent::embedding::hashing::HashingEmbedder;
use pertinent::grpc::pb;
use pertinent::grpc::pb::content_service_client::ContentServiceClient;
use pertinent::grpc::pb::prospect_service_client::ProspectServiceClient;
use pertinent::grpc::pb::scoring_service_client::ScoringServiceClient;
use pertinent::startup::App;
use pertinent::store::VectorStore;
use pertinent::store::qdrant::QdrantStore;
use pertinent::store::sqlite::SqliteStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::unplug::UnpluggableStore;

/// What turns texts into vectors in a test service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// all-MiniLM-L6-v2 on ONNX Runtime, as in production: for scoring, the gate and
    /// end-to-end paths.
    Real,
    /// The deterministic bag-of-words embedder: for validation and CRUD tests, which need
    /// vectors but not meaning, and so no model.
    Hashing,
}

/// The real model's dimension, which the hashing embedder also makes, so that either can
/// open a store the other wrote.
const DIMENSION: usize = 384;

/// A running service and clients for it. Dropping it stops the service.
pub struct TestApp {
    pub channel: Channel,
    /// The service's store, which the test can unplug.
    pub store: Arc<UnpluggableStore>,
    model: Model,
    addr: std::net::SocketAddr,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts the service with the real model on a fresh data directory and waits until it
/// reports SERVING.
pub async fn spawn_app() -> TestApp {
    spawn_fresh(Model::Real).await
}

/// As `spawn_app`, on the hashing embedder: no model is loaded.
pub async fn spawn_plumbing_app() -> TestApp {
    spawn_fresh(Model::Hashing).await
}

async fn spawn_fresh(model: Model) -> TestApp {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = temp.path().to_path_buf();
    let mut app = spawn_with(model, &dir, |_| {}).await;
    app._temp = Some(temp);
    app
}

/// Starts the service with the real model on `dir` with settings adjusted by `adjust`.
pub async fn spawn_app_in(dir: &Path, adjust: impl FnOnce(&mut ServeSettings)) -> TestApp {
    spawn_with(Model::Real, dir, adjust).await
}

/// Starts the service on `model` and `dir` with settings adjusted by `adjust`: the store the
/// settings name, behind a switch the test can turn off.
pub async fn spawn_with(
    model: Model,
    dir: &Path,
    adjust: impl FnOnce(&mut ServeSettings),
) -> TestApp {
    let embedder: Arc<dyn Embedder> = match model {
        Model::Real => {
            let embedding = ServeSettings::for_local(dir)
                .validate()
                .expect("valid settings")
                .embedding;
            let loaded = tokio::task::spawn_blocking(move || FastembedEmbedder::load(&embedding))
                .await
                .expect("the loading task");
            Arc::new(loaded.expect("the model loads"))
        }
        Model::Hashing => Arc::new(HashingEmbedder::new(DIMENSION)),
    };
    spawn_on(model, embedder, dir, adjust).await
}

/// As `spawn_with`, on the embedder given (`model` says which kind it is, for restarts).
pub async fn spawn_on(
    model: Model,
    embedder: Arc<dyn Embedder>,
    dir: &Path,
    adjust: impl FnOnce(&mut ServeSettings),
) -> TestApp {
    let mut settings = ServeSettings::for_local(dir);
    adjust(&mut settings);
    let options = settings.validate().expect("valid settings");
    let inner: Arc<dyn VectorStore> = match &options.store {
        StoreOptions::Sqlite(sqlite) => {
            Arc::new(SqliteStore::open_with(sqlite, embedder.dimension()).expect("the store opens"))
        }
        StoreOptions::Qdrant(qdrant) => Arc::new(
            QdrantStore::connect(qdrant, embedder.dimension())
                .await
                .expect("Qdrant answers"),
        ),
    };
    let store = Arc::new(UnpluggableStore::new(inner));
    let app = App::build_with(options, embedder, store.clone())
        .await
        .expect("the service starts");
    let addr = app.addr();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect()
        .await
        .expect("the client connects");
    let app = TestApp {
        channel,
        store,
        model,
        addr,
        data_dir: dir.to_path_buf(),
        _temp: None,
        shutdown: Some(tx),
        handle: Some(handle),
    };
    app.wait_serving("pertinent.v1.ScoringService").await;
    app
}

impl TestApp {
    /// The address the service listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    pub fn prospects(&self) -> ProspectServiceClient<Channel> {
        ProspectServiceClient::new(self.channel.clone())
    }

    pub fn content(&self) -> ContentServiceClient<Channel> {
        ContentServiceClient::new(self.channel.clone())
    }

    pub fn scoring(&self) -> ScoringServiceClient<Channel> {
        ScoringServiceClient::new(self.channel.clone())
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    /// Waits (on the Health Watch stream, no polling) until `service` is SERVING.
    pub async fn wait_serving(&self, service: &str) {
        let mut stream = self
            .health()
            .watch(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health watch")
            .into_inner();
        while let Some(update) = stream.message().await.expect("health stream") {
            if update.status == ServingStatus::Serving as i32 {
                return;
            }
        }
        panic!("health stream ended before {service} was SERVING");
    }

    /// Keeps `dir` (a temporary directory the test made) alive as long as the service.
    pub fn keep(&mut self, dir: tempfile::TempDir) {
        self._temp = Some(dir);
    }

    /// The data directory the service runs on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the service (draining requests) and waits for it to finish.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("the server task")
                .expect("the server ran cleanly");
        }
        self._temp.take()
    }

    /// Stops the service and starts a new one on the same data directory.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// As `restart`, with the new service's settings adjusted by `adjust`.
    pub async fn restart_with(self, adjust: impl FnOnce(&mut ServeSettings)) -> TestApp {
        let dir = self.data_dir.clone();
        let model = self.model;
        let temp = self.stop().await;
        let mut app = spawn_with(model, &dir, adjust).await;
        app._temp = temp;
        app
    }

    /// The decision the store holds for a send id, if any (to tell what was written from what
    /// was only remembered).
    pub async fn stored_decision(&self, tenant: &str, send_id: &str) -> Option<String> {
        use pertinent::domain::{SendId, Tenant};
        self.store
            .inner()
            .get_decision(
                &Tenant::parse(tenant).unwrap(),
                &SendId::parse(send_id).unwrap(),
            )
            .await
            .expect("the store answers")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

// ------------------------------------------------------------------ fixtures

pub fn prospect(id: &str, name: &str, company: &str, role: &str) -> pb::Prospect {
    pb::Prospect {
        id: id.into(),
        name: name.into(),
        company: company.into(),
        role: role.into(),
        attributes: HashMap::new(),
        signal_count: 0,
    }
}

pub fn signal(id: &str, source: pb::SignalSource, text: &str) -> pb::Signal {
    pb::Signal {
        id: id.into(),
        source: source as i32,
        polarity: pb::Polarity::Positive as i32,
        observed_at: None,
        text: text.into(),
        weight: 0.0,
    }
}

pub fn negative(id: &str, text: &str) -> pb::Signal {
    pb::Signal {
        polarity: pb::Polarity::Negative as i32,
        ..signal(id, pb::SignalSource::EmailReply, text)
    }
}

pub fn content_piece(id: &str, kind: pb::ContentKind, title: &str, body: &str) -> pb::Content {
    pb::Content {
        id: id.into(),
        kind: kind as i32,
        title: title.into(),
        body: body.into(),
        tags: vec![],
    }
}

pub fn by_content(id: &str) -> Option<pb::Candidate> {
    Some(pb::Candidate {
        item: Some(pb::candidate::Item::ContentId(id.into())),
    })
}

pub fn by_draft(title: &str, body: &str) -> Option<pb::Candidate> {
    Some(pb::Candidate {
        item: Some(pb::candidate::Item::Draft(pb::Draft {
            title: title.into(),
            body: body.into(),
            id: String::new(),
        })),
    })
}

pub async fn upsert(app: &TestApp, tenant: &str, p: pb::Prospect) -> pb::Prospect {
    app.prospects()
        .upsert_prospect(pb::UpsertProspectRequest {
            tenant: tenant.into(),
            prospect: Some(p),
        })
        .await
        .expect("upsert prospect")
        .into_inner()
}

pub async fn add_signals(
    app: &TestApp,
    tenant: &str,
    prospect: &str,
    signals: Vec<pb::Signal>,
) -> pb::AddSignalsResponse {
    app.prospects()
        .add_signals(pb::AddSignalsRequest {
            tenant: tenant.into(),
            prospect_id: prospect.into(),
            signals,
        })
        .await
        .expect("add signals")
        .into_inner()
}

pub async fn register(app: &TestApp, tenant: &str, c: pb::Content) -> pb::Content {
    app.content()
        .register_content(pb::RegisterContentRequest {
            tenant: tenant.into(),
            content: Some(c),
        })
        .await
        .expect("register content")
        .into_inner()
}

pub async fn score(
    app: &TestApp,
    tenant: &str,
    prospect: &str,
    candidate: Option<pb::Candidate>,
) -> Result<pb::ScoreResult, tonic::Status> {
    app.scoring()
        .score(pb::ScoreRequest {
            tenant: tenant.into(),
            prospect_id: prospect.into(),
            candidate,
        })
        .await
        .map(|r| r.into_inner())
}

/// Reason codes of a result.
pub fn codes(r: &pb::ScoreResult) -> Vec<pb::ReasonCode> {
    r.reasons
        .iter()
        .map(|x| pb::ReasonCode::try_from(x.code).expect("a known reason code"))
        .collect()
}

pub fn decision(r: &pb::ScoreResult) -> pb::Decision {
    pb::Decision::try_from(r.decision).expect("a known decision")
}

/// A small B2B tenant: five prospects with distinct needs, and content for some of them.
pub async fn seed_tenant(app: &TestApp, tenant: &str) {
    use pb::SignalSource::*;
    let people = [
        (
            "ana",
            "Ana Ruiz",
            "Northwind Logistics",
            "VP Operations",
            vec![
                signal(
                    "a1",
                    CallNote,
                    "Our warehouse pickers lose hours because slotting is never updated; we want to re-slot SKUs weekly based on demand.",
                ),
                signal(
                    "a2",
                    ForumPost,
                    "Has anyone automated pick-path optimisation in a multi-level warehouse? Travel time is killing our throughput.",
                ),
                signal("a3", WebVisit, "Visited pricing page"),
            ],
        ),
        (
            "ben",
            "Ben Okafor",
            "Helix Bank",
            "CISO",
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
        ),
        (
            "chen",
            "Chen Wei",
            "Brightline Clinics",
            "Head of Patient Experience",
            vec![
                signal(
                    "c1",
                    Survey,
                    "Patients keep missing appointments; no-show rate is 18% and reminders are manual phone calls.",
                ),
                signal(
                    "c2",
                    ForumPost,
                    "Looking for SMS appointment reminders that integrate with our EHR scheduling.",
                ),
            ],
        ),
        (
            "dara",
            "Dara Singh",
            "Quanta Retail",
            "Director of E-commerce",
            vec![
                signal(
                    "d1",
                    CallNote,
                    "Cart abandonment on mobile checkout is 70%; we suspect the payment step is too slow.",
                ),
                signal(
                    "d2",
                    CaseStudyRead,
                    "Read: how a fashion retailer cut checkout time in half with one-click payments.",
                ),
            ],
        ),
        (
            "eli",
            "Eli Novak",
            "Forge Manufacturing",
            "Plant Manager",
            vec![signal(
                "e1",
                CallNote,
                "Unplanned downtime on our CNC line costs us a shift a week; we want vibration sensors for predictive maintenance.",
            )],
        ),
    ];
    for (id, name, company, role, signals) in people {
        upsert(app, tenant, prospect(id, name, company, role)).await;
        add_signals(app, tenant, id, signals).await;
    }
    use pb::ContentKind::*;
    let pieces = [
        (
            "slotting-guide",
            Ebook,
            "Dynamic slotting: re-slot your warehouse weekly from demand data",
            "How demand-driven slotting and pick-path optimisation cut picker travel time by 35% in multi-level warehouses.",
        ),
        (
            "access-reviews",
            CaseStudy,
            "How a regional bank automated SOX user access reviews",
            "Quarterly access certification went from a quarter of spreadsheet work to two days, with an audit trail the regulator accepted.",
        ),
        (
            "no-show",
            Webinar,
            "Cutting patient no-shows with automated SMS reminders",
            "Clinics that connected two-way SMS reminders to their EHR scheduling reduced no-shows from 18% to 7%.",
        ),
        (
            "checkout",
            BlogPost,
            "One-click mobile checkout: shaving seconds off the payment step",
            "Why mobile cart abandonment spikes at payment, and how wallet payments halve checkout time.",
        ),
        (
            "company-news",
            Newsletter,
            "Acme Software quarterly newsletter: our new office and team updates",
            "We moved into a new office, hired twelve people and celebrated our tenth anniversary. Book a demo of our platform today!",
        ),
    ];
    for (id, kind, title, body) in pieces {
        register(app, tenant, content_piece(id, kind, title, body)).await;
    }
}
