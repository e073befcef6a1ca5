//! The send-path gate's settings: its default policy and fail decision, timeouts, memory,
//! which decisions are recorded, and retention.

use super::*;

/// The send-path gate's defaults.
#[derive(Debug, Clone, Args)]
pub struct GateSettings {
    /// JSON file with the default gate policy (any subset of its fields; docs/gate.md lists
    /// them). Tenants override it with GateService.SetPolicy.
    #[arg(long, env = "PERTINENT_GATE_POLICY")]
    pub gate_policy: Option<PathBuf>,

    /// Decision when the store cannot be reached in time, unless a tenant's policy says
    /// otherwise: send, review or reject.
    #[arg(long, env = "PERTINENT_GATE_FAIL_DECISION", value_enum)]
    pub gate_fail_decision: Option<FailDecision>,

    /// Longest a Check may wait for the store before answering the fail decision, in
    /// milliseconds (a shorter caller deadline wins).
    #[arg(long, env = "PERTINENT_GATE_TIMEOUT_MS", default_value_t = 1_000)]
    pub gate_timeout_ms: u64,

    /// Memory for prospects' send and engagement histories read by the gate, in MiB (a send's
    /// embedding is kept at 8 bits per dimension; docs/benchmarks.md, "Memory per entry").
    #[arg(
        long = "gate-history-mib",
        alias = "history-cache-mib",
        env = "PERTINENT_GATE_HISTORY_MIB",
        default_value_t = 32
    )]
    pub history_cache_mib: u64,

    /// Which of the gate's decisions are written to the store: `sends` (SEND, with the send,
    /// and REVIEW, which RecordSend may follow) or `all`. Decisions not written are remembered
    /// in memory for retries (see --decision-memory-mib); docs/gate.md says what each costs.
    /// With --qdrant-url every decision is written, as replicas must agree on each send id.
    #[arg(
        long,
        env = "PERTINENT_RECORD_DECISIONS",
        value_enum,
        default_value_t = RecordDecisions::Sends
    )]
    pub record_decisions: RecordDecisions,

    /// Memory for the gate's recent decisions, which retries are answered from, in MiB
    /// (docs/benchmarks.md, "Memory per entry", says how many that holds).
    #[arg(long, env = "PERTINENT_DECISION_MEMORY_MIB", default_value_t = 8)]
    pub decision_memory_mib: u64,

    /// How long a decision is remembered in memory for retries, in minutes.
    #[arg(
        long,
        env = "PERTINENT_DECISION_MEMORY_MINUTES",
        default_value_t = 1440
    )]
    pub decision_memory_minutes: u64,

    /// Let a fail decision of SEND stand (the default policy's or a tenant's): without this
    /// flag, a policy may not set it, and a stored one answers REVIEW instead. Opted-out
    /// prospects are REJECT whatever the fail decision.
    #[arg(long, env = "PERTINENT_ALLOW_FAIL_SEND")]
    pub allow_fail_send: bool,

    /// Days the gate keeps decisions, sends and engagements; older ones are purged (at start,
    /// then hourly). 0 keeps them forever. Opt-outs and the suppression list are never purged.
    /// No policy window may be longer.
    #[arg(long, env = "PERTINENT_RETENTION_DAYS", default_value_t = 730)]
    pub retention_days: u64,
}

/// Which gate decisions are written to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecordDecisions {
    /// SEND decisions, written with the send, and REVIEW decisions. A retry of a REJECT is
    /// answered from memory, which a restart empties.
    Sends,
    /// Every decision: a retry gets the first decision even after a restart, at the cost of
    /// a durable write per check.
    All,
}

/// What the gate answers when the store is unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailDecision {
    Send,
    Review,
    Reject,
}

impl GateSettings {
    /// The gate's options: the default policy (built in, then the file, then the flag), validated.
    pub(super) fn options(&self) -> anyhow::Result<crate::engine::gate::GateOptions> {
        use crate::scoring::Decision;
        use crate::scoring::gate::GatePolicy;
        let mut policy: GatePolicy = match &self.gate_policy {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?
            }
            None => GatePolicy::default(),
        };
        if let Some(d) = self.gate_fail_decision {
            policy.fail_decision = match d {
                FailDecision::Send => Decision::Send,
                FailDecision::Review => Decision::Review,
                FailDecision::Reject => Decision::Reject,
            };
        }
        policy
            .validate()
            .map_err(|e| anyhow::anyhow!("gate policy: {e}"))?;
        anyhow::ensure!(
            policy.fail_decision != Decision::Send || self.allow_fail_send,
            "the gate's fail decision is SEND: that needs --allow-fail-send"
        );
        let retention = (self.retention_days > 0)
            .then(|| Duration::from_secs(self.retention_days.saturating_mul(24 * 3600)));
        if let Some(retention) = retention {
            for (name, seconds) in policy.durations() {
                anyhow::ensure!(
                    name == "opt_out_seconds" || seconds <= retention.as_secs(),
                    "gate policy: {name} is longer than --retention-days"
                );
            }
        }
        anyhow::ensure!(
            self.gate_timeout_ms >= 1,
            "--gate-timeout-ms must be at least 1"
        );
        anyhow::ensure!(
            self.decision_memory_mib >= 1,
            "--decision-memory-mib must be at least 1"
        );
        anyhow::ensure!(
            self.decision_memory_minutes >= 1,
            "--decision-memory-minutes must be at least 1"
        );
        Ok(crate::engine::gate::GateOptions {
            default_policy: policy,
            timeout: Duration::from_millis(self.gate_timeout_ms),
            record_all: self.record_decisions == RecordDecisions::All,
            allow_fail_send: self.allow_fail_send,
            retention,
        })
    }
}
