//! Building and running the service: picks the adapters, binds the listener, serves until told
//! to stop. The only module that names concrete adapters.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth::{AuthLayer, Authenticator};
use crate::config::ServeSettings;
use crate::embedding::Embedder;
use crate::embedding::fastembed::FastembedEmbedder;
use crate::engine::{Engine, EngineLimits};
use crate::grpc::conn::SmallWrites;
use crate::grpc::pb::content_service_server::ContentServiceServer;
use crate::grpc::pb::gate_service_server::GateServiceServer;
use crate::grpc::pb::prospect_service_server::ProspectServiceServer;
use crate::grpc::pb::scoring_service_server::ScoringServiceServer;
use crate::grpc::tls::{TlsFiles, TlsReloader};
use crate::grpc::{self, ContentApi, GateApi, Handlers, ProspectApi, RequestLimits, ScoringApi};
use crate::store::VectorStore;
use crate::store::qdrant::QdrantStore;
use crate::store::sqlite::SqliteStore;

/// How long a cached entry lives with the embedded store (see `App::build_with_embedder`).
const EMBEDDED_CACHE_TTL: Duration = Duration::from_secs(600);
/// How often readiness is re-checked while serving.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// A built service: model loaded, store open, listener bound, not yet serving.
pub struct App {
    listener: TcpListener,
    engine: Arc<Engine>,
    handlers: Handlers,
    max_message_bytes: usize,
    store: StoreHandle,
    auth: Option<Arc<Authenticator>>,
    reflection: bool,
    tls: Option<Arc<TlsReloader>>,
    /// The plaintext health-only listener (`--health-listen`).
    health_listener: Option<TcpListener>,
}

/// The concrete store behind the engine, kept for orderly shutdown.
#[derive(Clone)]
pub enum StoreHandle {
    Sqlite(Arc<SqliteStore>),
    Qdrant(Arc<QdrantStore>),
}

impl StoreHandle {
    /// Closes the embedded store (for shutdown; tests use it to take the store away). A remote
    /// store has nothing to close.
    pub fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close(),
            Self::Qdrant(_) => {}
        }
    }
}

impl App {
    /// Loads the model, opens the store and binds the listener. Every misconfiguration (missing
    /// model or runtime, unreachable Qdrant, vector size mismatch) is an error here, not later.
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Self> {
        let embedding = settings.embedding.clone();
        let embedder = tokio::task::spawn_blocking(move || FastembedEmbedder::load(&embedding))
            .await
            .context("loading the embedding model")??;
        let embedder: Arc<dyn Embedder> = Arc::new(embedder);
        Self::build_with_embedder(settings, embedder).await
    }

    /// As `build`, with an embedder given by the caller.
    pub async fn build_with_embedder(
        settings: ServeSettings,
        embedder: Arc<dyn Embedder>,
    ) -> anyhow::Result<Self> {
        let scoring = settings.scoring.load()?;
        let ignored = scoring.ignored_fields();
        if !ignored.is_empty() {
            tracing::warn!(
                fields = ?ignored,
                "the scoring config sets parameters of the previous scoring method; they are ignored (docs/scoring.md)"
            );
        }
        let dimension = embedder.dimension();
        let (store, handle): (Arc<dyn VectorStore>, StoreHandle) = match &settings.store.qdrant_url
        {
            Some(url) => {
                let q = Arc::new(
                    QdrantStore::connect(url, &settings.store, dimension)
                        .await
                        .with_context(|| format!("connecting to Qdrant at {url}"))?,
                );
                (q.clone(), StoreHandle::Qdrant(q))
            }
            None => {
                let s = Arc::new(
                    SqliteStore::open_with_readers(
                        &settings.store.data_dir,
                        dimension,
                        settings.store.sqlite_readers,
                    )
                    .with_context(|| {
                        format!("opening the store in {}", settings.store.data_dir.display())
                    })?,
                );
                (s.clone(), StoreHandle::Sqlite(s))
            }
        };
        let limits = EngineLimits {
            max_in_flight: settings.limits.max_in_flight,
            max_scans: settings.limits.max_scans,
            // A shared remote store has writers this process does not see: entries expire after
            // --cache-ttl-ms. With the embedded store every write goes through this process and
            // invalidates at once; entries still expire after EMBEDDED_CACHE_TTL, which bounds the
            // one staleness left: a load that read the store just before a write and landed in
            // the cache just after the write's invalidation.
            cache_ttl: match handle {
                StoreHandle::Qdrant(_) => settings.store.cache_ttl(),
                StoreHandle::Sqlite(_) => EMBEDDED_CACHE_TTL,
            },
            profile_cache_bytes: settings.store.profile_cache_mib * 1024 * 1024,
            text_cache_bytes: settings.embedding.text_cache_mib * 1024 * 1024,
            history_cache_bytes: settings.gate.history_cache_mib * 1024 * 1024,
            content_cache_bytes: settings.store.content_cache_mib * 1024 * 1024,
            decision_memory_bytes: settings.gate.decision_memory_mib * 1024 * 1024,
            decision_memory_ttl: Duration::from_secs(settings.gate.decision_memory_minutes * 60),
            exclusive_store: matches!(handle, StoreHandle::Sqlite(_)),
        };
        let auth = match &settings.security.api_keys_file {
            Some(path) => Some(Authenticator::load(path.clone())?),
            None => None,
        };
        if auth.is_none() {
            if settings.security.insecure_no_auth && !settings.listen.ip().is_loopback() {
                tracing::warn!(
                    listen = %settings.listen,
                    "--insecure-no-auth: no API keys; anyone who reaches this port can read and erase every tenant's data"
                );
            } else {
                tracing::info!("no API keys (--api-keys-file): listening on loopback only");
            }
        }
        let tls = match (&settings.security.tls_cert, &settings.security.tls_key) {
            (Some(cert), Some(key)) => Some(TlsReloader::load(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: settings.security.tls_client_ca.clone(),
            })?),
            _ => None,
        };
        let gate = settings.gate.load()?;
        let engine = Arc::new(Engine::new(embedder, store, scoring, gate, limits));
        // Before serving: the gate must know every opt-out even if the store fails later.
        let suppressed = engine
            .load_suppressions()
            .await
            .context("loading the suppression list")?;
        tracing::info!(suppressed, "suppression list loaded");
        // Retention applies before the first request, then hourly (`run`).
        if let Err(e) = engine.purge_expired().await {
            tracing::warn!(error = %e, "retention purge failed; retrying within the hour");
        }
        if settings.gate.allow_fail_send {
            tracing::warn!(
                "--allow-fail-send: a policy may answer SEND while the store is unreachable"
            );
        }
        let health_listener = match settings.security.health_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding --health-listen {addr}"))?,
            ),
            None => None,
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let handlers = Handlers {
            engine: engine.clone(),
            limits: RequestLimits {
                max_text_bytes: settings.limits.max_text_bytes,
                max_signals_per_call: settings.limits.max_signals_per_call,
                max_candidates: settings.limits.max_candidates,
                max_audience: settings.limits.max_audience,
            },
        };
        Ok(Self {
            listener,
            engine,
            handlers,
            max_message_bytes: settings.limits.max_message_bytes,
            store: handle,
            auth,
            reflection: settings.security.reflection,
            tls,
            health_listener,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// The plaintext health-only address, if `--health-listen` was given.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The store behind the service.
    pub fn store(&self) -> StoreHandle {
        self.store.clone()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let (reporter, health) = tonic_health::server::health_reporter();
        // Health alone, in plaintext, for probes that cannot speak TLS; it stops with the rest.
        let (health_stop, health_stopped) = tokio::sync::oneshot::channel::<()>();
        let health_only = self.health_listener.take().map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving grpc.health.v1 in plaintext");
            }
            let service = health.clone();
            tokio::spawn(async move {
                let served = Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                        let _ = health_stopped.await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::warn!(error = %e, "the health listener failed");
                }
            })
        });
        set_all(&reporter, ServingStatus::NotServing).await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("building the reflection service")?;

        let readiness = tokio::spawn(watch_readiness(self.engine.clone(), reporter.clone()));
        let keys = self.auth.clone().map(|a| tokio::spawn(a.watch()));
        let certs = self.tls.clone().map(|t| tokio::spawn(t.watch()));
        let retention = tokio::spawn(purge_periodically(self.engine.clone()));
        let n = self.max_message_bytes;
        let h = &self.handlers;
        let addr = self.addr();
        tracing::info!(%addr, "serving gRPC");
        let router = Server::builder()
            .trace_fn(crate::telemetry::request_span)
            // Keys are checked from the headers, before any request body is decoded.
            .layer(AuthLayer::new(self.auth.clone()))
            .add_service(health)
            .add_optional_service(self.reflection.then_some(reflection))
            .add_service(
                ProspectServiceServer::new(ProspectApi(h.clone()))
                    .max_decoding_message_size(n)
                    .max_encoding_message_size(n),
            )
            .add_service(
                ContentServiceServer::new(ContentApi(h.clone()))
                    .max_decoding_message_size(n)
                    .max_encoding_message_size(n),
            )
            .add_service(
                ScoringServiceServer::new(ScoringApi(h.clone()))
                    .max_decoding_message_size(n)
                    .max_encoding_message_size(n),
            )
            .add_service(
                GateServiceServer::new(GateApi(h.clone()))
                    .max_decoding_message_size(n)
                    .max_encoding_message_size(n),
            );
        let stopping = async {
            shutdown.await;
            readiness.abort();
            retention.abort();
            if let Some(keys) = &keys {
                keys.abort();
            }
            if let Some(certs) = &certs {
                certs.abort();
            }
            set_all(&reporter, ServingStatus::NotServing).await;
            let _ = health_stop.send(());
            tracing::info!("shutting down: draining in-flight requests");
        };
        let result = match self.tls.clone() {
            Some(tls) => {
                tracing::info!(mtls = tls.verifies_clients(), "serving gRPC over TLS");
                router
                    .serve_with_incoming_shutdown(
                        crate::grpc::tls::incoming(self.listener, tls),
                        stopping,
                    )
                    .await
            }
            // Our own listener (so port 0 works) means tonic does not set TCP_NODELAY itself:
            // without it, a response written in two parts waits ~40 ms for a delayed ACK.
            // `SmallWrites` lets answers that finish together share a write (grpc/conn.rs).
            None => {
                router
                    .serve_with_incoming_shutdown(
                        TcpIncoming::from(self.listener)
                            .with_nodelay(Some(true))
                            .with_keepalive(Some(Duration::from_secs(60)))
                            .map(|accepted| accepted.map(SmallWrites::new)),
                        stopping,
                    )
                    .await
            }
        };
        if let Some(task) = health_only {
            let _ = task.await;
        }
        if let StoreHandle::Sqlite(s) = &self.store {
            s.close();
        }
        result.context("serving gRPC")
    }
}

/// How often retention purges old decisions, sends and engagements.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Applies the retention period every `PURGE_INTERVAL` (`build` applied it at start).
async fn purge_periodically(engine: Arc<Engine>) {
    if engine.retention().is_none() {
        return;
    }
    loop {
        tokio::time::sleep(PURGE_INTERVAL).await;
        if let Err(e) = engine.purge_expired().await {
            tracing::warn!(error = %e, "retention purge failed; retrying at the next interval");
        }
    }
}

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    for name in grpc::SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// The named services are SERVING while the model and the store both answer.
async fn watch_readiness(engine: Arc<Engine>, reporter: HealthReporter) {
    let mut serving = false;
    loop {
        let ok = match engine.health().await {
            Ok(()) => true,
            Err(e) => {
                if serving {
                    tracing::warn!(error = %e, "not ready");
                }
                false
            }
        };
        if ok != serving {
            serving = ok;
            let status = if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            set_all(&reporter, status).await;
            tracing::info!(ready = ok, "readiness changed");
        }
        tokio::time::sleep(HEALTH_INTERVAL).await;
    }
}

/// Tunes glibc's allocator for a long-running service next to ONNX Runtime: large blocks
/// (model batches) are mmapped and returned to the system when freed, freed heap is trimmed
/// early, and the number of malloc arenas stays small. Without this, the resident size keeps
/// every transient peak. Call once, before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "listening for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "listening for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
