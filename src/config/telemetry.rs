//! Logs, traces and metrics: the flags, resolved into `TelemetryOptions` (the standard OTEL_*
//! variables apply unless a flag is given).

use super::*;

/// Logs and traces.
#[derive(Debug, Clone, Args)]
pub struct TelemetrySettings {
    /// Log filter in tracing's EnvFilter syntax (e.g. "info,pertinent=debug").
    #[arg(long, env = "PERTINENT_LOG_FILTER", default_value = "info")]
    pub log_filter: String,

    /// Log format: text for people, json for log pipelines.
    #[arg(long, env = "PERTINENT_LOG_FORMAT", value_enum, default_value_t = LogFormatSetting::Text)]
    pub log_format: LogFormatSetting,

    /// OTLP/gRPC endpoint for traces (e.g. http://127.0.0.1:4317). Unset, the standard
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT, are used; with
    /// none of them (or OTEL_SDK_DISABLED=true) traces are not exported.
    #[arg(long, env = "PERTINENT_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// service.name reported with traces. Unset, the standard OTEL_SERVICE_NAME, then
    /// "pertinent".
    #[arg(long, env = "PERTINENT_SERVICE_NAME")]
    pub service_name: Option<String>,

    /// Serve Prometheus metrics at /metrics on this address (plain HTTP; port 0 picks a free
    /// port). Off when unset. docs/operations.md lists the metrics.
    #[arg(long, env = "PERTINENT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Label the gate's decision metrics with the tenant. Off by default: every tenant adds
    /// series, so turn it on only for a bounded number of tenants.
    #[arg(long, env = "PERTINENT_METRICS_TENANT_LABELS")]
    pub metrics_tenant_labels: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatSetting {
    Text,
    Json,
}

impl TelemetrySettings {
    /// The flags win over the standard OTEL_* variables, read through `env`.
    pub(super) fn options(&self, env: impl Fn(&str) -> Option<String>) -> TelemetryOptions {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true");
        let otlp_endpoint = self
            .otlp_endpoint
            .clone()
            .or_else(|| set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"));
        TelemetryOptions {
            log_filter: self.log_filter.clone(),
            log_format: match self.log_format {
                LogFormatSetting::Text => LogFormat::Text,
                LogFormatSetting::Json => LogFormat::Json,
            },
            otlp_endpoint: if disabled { None } else { otlp_endpoint },
            metrics_listen: self.metrics_listen,
            service_name: self
                .service_name
                .clone()
                .or_else(|| set("OTEL_SERVICE_NAME"))
                .unwrap_or_else(|| "pertinent".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_otel_variables_apply_unless_a_flag_is_given() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let t = ServeSettings::for_local(Path::new("unused")).telemetry;
        let none = t.options(env(&[]));
        assert_eq!(none.otlp_endpoint, None);
        assert_eq!(none.service_name, "pertinent");

        let standard = &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_SERVICE_NAME", "pertinent-eu"),
        ];
        let o = t.options(env(standard));
        assert_eq!(o.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        assert_eq!(o.service_name, "pertinent-eu");

        let traces = &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:4318",
            ),
        ];
        let o = t.options(env(traces));
        assert_eq!(o.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4318"));

        let disabled = &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_SDK_DISABLED", "true"),
        ];
        assert_eq!(t.options(env(disabled)).otlp_endpoint, None);

        let mut flags = t.clone();
        flags.otlp_endpoint = Some("http://127.0.0.1:9999".into());
        flags.service_name = Some("from-the-flag".into());
        let o = flags.options(env(standard));
        assert_eq!(o.otlp_endpoint.as_deref(), Some("http://127.0.0.1:9999"));
        assert_eq!(o.service_name, "from-the-flag");
    }
}
