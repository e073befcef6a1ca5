//! Building and running the service: picks the adapters, binds the listener, serves until told
//! to stop. The only module that names concrete adapters.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_stream::StreamExt as _;
use tonic::codec::CompressionEncoding;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::auth::{AuthLayer, Authenticator};
use crate::config::{ServeOptions, StoreOptions};
use crate::embedding::EmbedError;
use crate::embedding::Embedder;
use crate::embedding::fastembed::FastembedEmbedder;
use crate::engine::{Engine, EngineError};
use crate::grpc::conn::{SmallWrites, TransportLimits};
use crate::grpc::observe::ObserveLayer;
use crate::grpc::pb::content_service_server::ContentServiceServer;
use crate::grpc::pb::gate_service_server::GateServiceServer;
use crate::grpc::pb::prospect_service_server::ProspectServiceServer;
use crate::grpc::pb::scoring_service_server::ScoringServiceServer;
use crate::grpc::tls::TlsReloader;
use crate::grpc::{self, ContentApi, GateApi, Handlers, ProspectApi, ScoringApi};
use crate::store::qdrant::QdrantStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Metered, VectorStore};

/// How long a keep-alive ping may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often readiness is re-checked: an outage shows within a second, and so does the end of
/// one. A check is one model and one store round trip.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// A built service: model loaded, store open, listener bound, not yet serving.
pub struct App {
    listener: TcpListener,
    engine: Arc<Engine>,
    handlers: Handlers,
    max_message_bytes: usize,
    transport: TransportLimits,
    /// The engine's store too, closed after the last request.
    store: Arc<dyn VectorStore>,
    auth: Option<Arc<Authenticator>>,
    reflection: bool,
    tls: Option<Arc<TlsReloader>>,
    /// The plaintext health-only listener (`--health-listen`).
    health_listener: Option<TcpListener>,
    /// The /metrics listener (`--metrics-listen`) and the recorder it renders.
    metrics: Option<(TcpListener, &'static PrometheusHandle)>,
}

impl App {
    /// Loads the model, opens the store and binds the listener. Every misconfiguration (missing
    /// model or runtime, unreachable Qdrant, vector size mismatch) is an error here, not later.
    pub async fn build(options: ServeOptions) -> anyhow::Result<Self> {
        let embedding = options.embedding.clone();
        let embedder = tokio::task::spawn_blocking(move || FastembedEmbedder::load(&embedding))
            .await
            .context("loading the embedding model")??;
        let embedder: Arc<dyn Embedder> = Arc::new(embedder);
        let dimension = embedder.dimension();
        let store: Arc<dyn VectorStore> = match &options.store {
            StoreOptions::Qdrant(qdrant) => Arc::new(
                QdrantStore::connect(qdrant, dimension)
                    .await
                    .with_context(|| format!("connecting to Qdrant at {}", qdrant.url))?,
            ),
            StoreOptions::Sqlite(sqlite) => {
                Arc::new(SqliteStore::open_with(sqlite, dimension).with_context(|| {
                    format!("opening the store in {}", sqlite.data_dir.display())
                })?)
            }
        };
        Self::build_with(options, embedder, store).await
    }

    /// As `build`, on the embedder and store given (tests substitute either port; the store
    /// must hold vectors of the embedder's dimension). `options.embedding` and
    /// `options.store` are not used.
    pub async fn build_with(
        options: ServeOptions,
        embedder: Arc<dyn Embedder>,
        store: Arc<dyn VectorStore>,
    ) -> anyhow::Result<Self> {
        let ServeOptions {
            listen,
            print_address: _,
            store: store_options,
            embedding: _,
            engine,
            requests,
            max_message_bytes,
            transport,
            telemetry,
            security,
        } = options;
        let metrics = match telemetry.metrics_listen {
            Some(addr) => {
                let handle = crate::telemetry::metrics::recorder()?;
                let listener = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding --metrics-listen {addr}"))?;
                Some((listener, handle))
            }
            None => None,
        };
        // Every store call measured and traced, whatever the adapter, and a remote store's
        // bounded by its request timeout.
        let bound = match &store_options {
            StoreOptions::Qdrant(qdrant) => Some(qdrant.timeout),
            StoreOptions::Sqlite(_) => None,
        };
        let store: Arc<dyn VectorStore> = Arc::new(Metered::new(store, bound));
        metrics::gauge!(
            "pertinent_build_info",
            "version" => env!("CARGO_PKG_VERSION"),
            "model" => embedder.model_id().to_owned(),
            "store" => store.adapter()
        )
        .set(1.0);
        let ignored = engine.scoring.ignored_fields();
        if !ignored.is_empty() {
            tracing::warn!(
                fields = ?ignored,
                "the scoring config sets parameters of the previous scoring method; they are ignored (docs/scoring.md)"
            );
        }
        let auth = match &security.api_keys_file {
            Some(path) => Some(Authenticator::load(path.clone())?),
            None => None,
        };
        if auth.is_none() {
            if security.insecure_no_auth && !listen.ip().is_loopback() {
                tracing::warn!(
                    %listen,
                    "--insecure-no-auth: no API keys; anyone who reaches this port can read and erase every tenant's data"
                );
            } else {
                tracing::info!("no API keys (--api-keys-file): listening on loopback only");
            }
        }
        let tls = match security.tls {
            Some(files) => Some(TlsReloader::load(files)?),
            None => None,
        };
        if engine.gate.allow_fail_send {
            tracing::warn!(
                "--allow-fail-send: a policy may answer SEND while the store is unreachable"
            );
        }
        let engine = Arc::new(Engine::new(embedder, store.clone(), engine));
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
        let health_listener = match security.health_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding --health-listen {addr}"))?,
            ),
            None => None,
        };
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let handlers = Handlers {
            engine: engine.clone(),
            limits: requests,
        };
        Ok(Self {
            listener,
            engine,
            handlers,
            max_message_bytes,
            transport,
            store,
            auth,
            reflection: security.reflection,
            tls,
            health_listener,
            metrics,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// The /metrics address, if `--metrics-listen` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The plaintext health-only address, if `--health-listen` was given.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
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
        let (metrics_stop, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let (draining, drained) = tokio::sync::oneshot::channel::<()>();
        let metrics_task = self.metrics.take().map(|(listener, handle)| {
            tokio::spawn(async move {
                let stopped = async {
                    let _ = metrics_stopped.await;
                };
                if let Err(e) = crate::telemetry::metrics::serve(listener, handle, stopped).await {
                    tracing::warn!(error = %e, "the metrics listener failed");
                }
            })
        });
        set_all(&reporter, ServingStatus::NotServing).await;
        // Reflection in both versions: v1, and v1alpha for the clients that still speak only it
        // (Python's grpcio-reflection, older grpcurl, grpcui, Postman, evans).
        let reflection_builder = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(grpc::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection = reflection_builder()
            .build_v1()
            .context("building the reflection service")?;
        let reflection_v1alpha = reflection_builder()
            .build_v1alpha()
            .context("building the reflection service (v1alpha)")?;

        let readiness = tokio::spawn(watch_readiness(self.engine.clone(), reporter.clone()));
        let keys = self.auth.clone().map(|a| tokio::spawn(a.watch()));
        let certs = self.tls.clone().map(|t| tokio::spawn(t.watch()));
        let retention = tokio::spawn(purge_periodically(self.engine.clone()));
        let n = self.max_message_bytes;
        let h = &self.handlers;
        let addr = self.addr();
        tracing::info!(%addr, "serving gRPC");
        // Every service takes and sends gzip and zstd (a response is compressed only when the
        // client says it accepts it), with the message bounds of `--max-message-bytes`.
        macro_rules! tuned {
            ($server:expr) => {
                $server
                    .max_decoding_message_size(n)
                    .max_encoding_message_size(n)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .accept_compressed(CompressionEncoding::Zstd)
                    .send_compressed(CompressionEncoding::Gzip)
                    .send_compressed(CompressionEncoding::Zstd)
            };
        }
        let t = self.transport;
        let router = Server::builder()
            .max_concurrent_streams(Some(t.max_streams_per_connection))
            .timeout(t.request_timeout)
            .http2_keepalive_interval(t.keepalive)
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .trace_fn(crate::telemetry::request_span)
            // Outermost, so that refusals are counted too.
            .layer(ObserveLayer)
            // Keys are checked from the headers, before any request body is decoded.
            .layer(AuthLayer::new(self.auth.clone()))
            .add_service(health)
            .add_optional_service(self.reflection.then_some(reflection))
            .add_optional_service(self.reflection.then_some(reflection_v1alpha))
            .add_service(tuned!(ProspectServiceServer::new(ProspectApi(h.clone()))))
            .add_service(tuned!(ContentServiceServer::new(ContentApi(h.clone()))))
            .add_service(tuned!(ScoringServiceServer::new(ScoringApi(h.clone()))))
            .add_service(tuned!(GateServiceServer::new(GateApi(h.clone()))));
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
            let _ = metrics_stop.send(());
            let _ = draining.send(());
            tracing::info!("shutting down: draining in-flight requests");
        };
        type Serving<'a> = std::pin::Pin<
            Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send + 'a>,
        >;
        let serving: Serving<'_> = match self.tls.clone() {
            Some(tls) => {
                tracing::info!(mtls = tls.verifies_clients(), "serving gRPC over TLS");
                Box::pin(router.serve_with_incoming_shutdown(
                    crate::grpc::tls::incoming(self.listener, tls),
                    stopping,
                ))
            }
            // Our own listener (so port 0 works) means tonic does not set TCP_NODELAY itself:
            // without it, a response written in two parts waits ~40 ms for a delayed ACK.
            // `SmallWrites` lets answers that finish together share a write (grpc/conn.rs).
            None => Box::pin(
                router.serve_with_incoming_shutdown(
                    TcpIncoming::from(self.listener)
                        .with_nodelay(Some(true))
                        .with_keepalive(Some(Duration::from_secs(60)))
                        .map(|accepted| accepted.map(SmallWrites::new)),
                    stopping,
                ),
            ),
        };
        // Draining ends after --shutdown-grace-secs even if a client keeps its connection open
        // (or a call never ends): what is still running is dropped, and the store closed.
        let grace = self.transport.shutdown_grace;
        let deadline = async move {
            if drained.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            served = serving => served,
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "shutting down: calls still running after the grace period are dropped");
                Ok(())
            }
        };
        if let Some(task) = health_only {
            let _ = task.await;
        }
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        self.store.close();
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
/// When the model's workers are gone for good, the overall service ("", what liveness probes
/// ask) turns NOT_SERVING too, so that the process is restarted rather than kept unready.
async fn watch_readiness(engine: Arc<Engine>, reporter: HealthReporter) {
    let mut serving = false;
    let mut alive = true;
    loop {
        let ok = match engine.health().await {
            Ok(()) => true,
            Err(e) => {
                if serving {
                    tracing::warn!(error = %e, "not ready");
                }
                if alive && matches!(e, EngineError::Embed(EmbedError::Stopped)) {
                    alive = false;
                    tracing::error!(
                        "the model's workers have stopped: liveness fails, so that the process is restarted"
                    );
                    reporter
                        .set_service_status("", ServingStatus::NotServing)
                        .await;
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
