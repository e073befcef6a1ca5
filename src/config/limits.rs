//! Bounds on requests and connections, so that no caller can make the service use unbounded
//! memory or time.

use super::*;

/// Bounds on requests, so that no caller can make the service use unbounded memory or time.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Largest signal text, draft body or content body, in bytes.
    #[arg(long, env = "PERTINENT_MAX_TEXT_BYTES", default_value_t = 16_384)]
    pub max_text_bytes: usize,

    /// Most signals one prospect may hold; an AddSignals past it is FAILED_PRECONDITION
    /// (replacing a signal by id never is). Building a profile compares signals pairwise.
    #[arg(
        long,
        env = "PERTINENT_MAX_SIGNALS_PER_PROSPECT",
        default_value_t = 5_000
    )]
    pub max_signals_per_prospect: u32,

    /// Most signals in one AddSignals call (and ids in one DeleteSignals call).
    #[arg(long, env = "PERTINENT_MAX_SIGNALS_PER_CALL", default_value_t = 256)]
    pub max_signals_per_call: usize,

    /// Most candidates in one Rank call.
    #[arg(long, env = "PERTINENT_MAX_CANDIDATES", default_value_t = 256)]
    pub max_candidates: usize,

    /// Largest FindAudience limit.
    #[arg(long, env = "PERTINENT_MAX_AUDIENCE", default_value_t = 1_000)]
    pub max_audience: usize,

    /// Largest gRPC message, in bytes.
    #[arg(long, env = "PERTINENT_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Requests handled at once; past that, RESOURCE_EXHAUSTED.
    #[arg(long, env = "PERTINENT_MAX_IN_FLIGHT", default_value_t = 4_096)]
    pub max_in_flight: usize,

    /// FindAudience scans and other tenant-wide reads running at once; past that, RESOURCE_EXHAUSTED.
    #[arg(long, env = "PERTINENT_MAX_SCANS", default_value_t = 4)]
    pub max_scans: usize,

    /// HTTP/2 streams (concurrent calls) one connection may have open; more wait for the
    /// client's own flow control. Bounds what one connection can make the server decode.
    #[arg(
        long,
        env = "PERTINENT_MAX_STREAMS_PER_CONNECTION",
        default_value_t = 256
    )]
    pub max_streams_per_connection: u32,

    /// Longest any call may run on the server, in milliseconds, whatever deadline the client
    /// sent (or none); past it the call is cancelled.
    #[arg(long, env = "PERTINENT_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Seconds between HTTP/2 keep-alive pings on an idle connection; a peer that does not
    /// answer one within 20 seconds is disconnected. 0 turns pings off.
    #[arg(long, env = "PERTINENT_KEEPALIVE_SECS", default_value_t = 60)]
    pub keepalive_secs: u64,

    /// On SIGTERM, how long calls in flight may run on before they are dropped and the store
    /// closed, in seconds (keep it under Kubernetes' terminationGracePeriodSeconds).
    #[arg(long, env = "PERTINENT_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,
}
