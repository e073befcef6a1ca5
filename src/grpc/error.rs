//! The one mapping from engine errors to gRPC statuses, and the InvalidArgument builder. Every
//! error carries `google.rpc.ErrorInfo` (a stable reason in `ERROR_DOMAIN`), and the ones worth
//! retrying (RESOURCE_EXHAUSTED, UNAVAILABLE) `google.rpc.RetryInfo` with a back-off hint.
//! Internal failures are logged with their cause and reach the client as a bare INTERNAL:
//! backend messages can carry paths, hosts or data that are not the client's business.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::ERROR_DOMAIN;
use crate::embedding::EmbedError;
use crate::engine::EngineError;
use crate::store::StoreError;

/// Field violations of one request, reported together, up to `MAX_LISTED` of them: a request
/// can be wrong in millions of places, and the answer must stay small whatever was sent.
#[derive(Debug, Default)]
pub struct Violations {
    listed: Vec<(String, String)>,
    /// Violations past `MAX_LISTED`, counted, not listed.
    more: usize,
}

/// The most violations an INVALID_ARGUMENT lists. With `MAX_ECHO` they keep the status's
/// headers (the message and the details travel as HTTP/2 headers) well under the 16 KiB that
/// clients accept by default.
const MAX_LISTED: usize = 10;
/// The longest field path or description it repeats, in bytes.
const MAX_ECHO: usize = 100;

/// `text` cut to at most `MAX_ECHO` bytes, on a character boundary.
fn bounded(text: String) -> String {
    if text.len() <= MAX_ECHO {
        return text;
    }
    let mut end = MAX_ECHO;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl Violations {
    /// Records that `field` is wrong, and why.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.listed.len() >= MAX_LISTED {
            self.more += 1;
            return;
        }
        self.listed
            .push((bounded(field.into()), bounded(description.into())));
    }

    /// Whether nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// INVALID_ARGUMENT naming every listed field, with google.rpc.BadRequest details.
    pub fn into_status(self) -> Status {
        let mut message = self
            .listed
            .iter()
            .map(|(f, d)| format!("{f}: {d}"))
            .collect::<Vec<_>>()
            .join("; ");
        if self.more > 0 {
            message.push_str(&format!("; and {} more", self.more));
        }
        let mut details = ErrorDetails::new();
        for (field, description) in self.listed {
            details.add_bad_request_violation(field, description);
        }
        detailed(
            Code::InvalidArgument,
            format!("invalid request: {message}"),
            "INVALID_ARGUMENT",
            details,
        )
    }
}

/// How long a client should wait after RESOURCE_EXHAUSTED: the queues drain in milliseconds.
const RETRY_BUSY: Duration = Duration::from_millis(100);
/// How long a client should wait after UNAVAILABLE: a store or model coming back takes longer.
const RETRY_UNAVAILABLE: Duration = Duration::from_secs(1);

/// A status with `details` plus ErrorInfo under `reason`.
fn detailed(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    mut details: ErrorDetails,
) -> Status {
    details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

/// A status with ErrorInfo under `reason` and nothing else.
pub fn plain(code: Code, message: impl Into<String>, reason: &str) -> Status {
    detailed(code, message, reason, ErrorDetails::new())
}

/// A status worth retrying after `after`: ErrorInfo and RetryInfo.
fn retry(code: Code, message: impl Into<String>, reason: &str, after: Duration) -> Status {
    detailed(
        code,
        message,
        reason,
        ErrorDetails::with_retry_info(Some(after)),
    )
}

fn internal(cause: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %cause, "internal error");
    plain(Code::Internal, "internal error", "INTERNAL")
}

impl From<EngineError> for Status {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound { kind, .. } => {
                let reason = match kind {
                    "prospect" => "PROSPECT_NOT_FOUND",
                    "content" => "CONTENT_NOT_FOUND",
                    _ => "NOT_FOUND",
                };
                plain(Code::NotFound, e.to_string(), reason)
            }
            EngineError::Overloaded(what) => {
                retry(Code::ResourceExhausted, what, "OVERLOADED", RETRY_BUSY)
            }
            EngineError::Conflict { field, message } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation("CONFLICT", field, message.clone());
                detailed(
                    Code::FailedPrecondition,
                    format!("{field}: {message}"),
                    "CONFLICT",
                    details,
                )
            }
            EngineError::Limit { field, message } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation("LIMIT", field, message.clone());
                detailed(
                    Code::FailedPrecondition,
                    format!("{field}: {message}"),
                    "LIMIT_REACHED",
                    details,
                )
            }
            EngineError::Internal(cause) => internal(&cause),
            EngineError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "dependency unavailable");
                retry(
                    Code::Unavailable,
                    "a dependency is unavailable; retry later",
                    "DEPENDENCY_UNAVAILABLE",
                    RETRY_UNAVAILABLE,
                )
            }
            EngineError::Store(s) => match s {
                StoreError::Unavailable(cause) => {
                    tracing::warn!(error = %cause, "store unavailable");
                    retry(
                        Code::Unavailable,
                        "the store is unavailable; retry later",
                        "STORE_UNAVAILABLE",
                        RETRY_UNAVAILABLE,
                    )
                }
                StoreError::Busy => retry(
                    Code::ResourceExhausted,
                    "the store's read queue is full; retry later",
                    "STORE_BUSY",
                    RETRY_BUSY,
                ),
                StoreError::MissingProspect => {
                    plain(Code::NotFound, "prospect not found", "PROSPECT_NOT_FOUND")
                }
                StoreError::DimensionMismatch { .. } | StoreError::Backend(_) => internal(&s),
            },
            EngineError::Embed(m) => match m {
                EmbedError::Overloaded => retry(
                    Code::ResourceExhausted,
                    "the embedding queue is full; retry later",
                    "EMBEDDING_QUEUE_FULL",
                    RETRY_BUSY,
                ),
                EmbedError::Stopped => retry(
                    Code::Unavailable,
                    "the embedding model is not running",
                    "MODEL_STOPPED",
                    RETRY_UNAVAILABLE,
                ),
                EmbedError::Load(_) | EmbedError::Model(_) => internal(&m),
            },
        }
    }
}
