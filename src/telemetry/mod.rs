//! Logs, traces and metrics: an EnvFilter, a fmt layer (text or JSON), an OpenTelemetry layer
//! that exports spans over OTLP/gRPC only when an endpoint is configured, and the Prometheus
//! recorder (`metrics`). Spans never record prospect texts, drafts or vectors (personal data).
//! What each span and metric holds: docs/operations.md.

pub mod metrics;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What logs and traces are set up from (config.rs fills it from the flags).
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// An EnvFilter directive (e.g. "info,pertinent=debug").
    pub log_filter: String,
    pub log_format: LogFormat,
    /// OTLP/gRPC endpoint for traces; none, no export.
    pub otlp_endpoint: Option<String>,
    /// service.name reported with traces.
    pub service_name: String,
    /// Where /metrics is served; none, nowhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people.
    Text,
    /// For log pipelines.
    Json,
}

/// Keeps the trace pipeline alive; dropping it flushes and shuts down the exporter.
#[must_use = "dropping the guard shuts telemetry down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("pertinent: flushing traces failed: {e}");
        }
    }
}

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(settings: &TelemetryOptions) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(&settings.log_filter)
        .map_err(|e| anyhow::anyhow!("--log-filter {:?}: {e}", settings.log_filter))?;
    let fmt = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_target(true).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let (otel, provider) = match &settings.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    Resource::builder()
                        .with_service_name(settings.service_name.clone())
                        .build(),
                )
                .build();
            let tracer = provider.tracer("pertinent");
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            opentelemetry::global::set_tracer_provider(provider.clone());
            (
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                Some(provider),
            )
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

/// The span of one gRPC request, a child of the caller's W3C `traceparent` when one is sent.
/// Only the method path is recorded, never the message.
pub fn request_span(request: &http::Request<()>) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let path = request.uri().path();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", path));
    // The status is recorded when the answer is known (grpc::observe).
    let span = tracing::info_span!(
        "grpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&opentelemetry_http::HeaderExtractor(request.headers()))
    });
    // Without the OpenTelemetry layer there is nothing to attach to; that is fine.
    let _ = span.set_parent(parent);
    span
}
