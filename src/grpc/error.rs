//! The one mapping from engine errors to gRPC statuses, and the InvalidArgument builder.
//!
//! Internal failures are logged here with their cause and reach the client as a bare
//! INTERNAL: backend messages can carry paths, hosts or data that are not the client's business.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::embedding::EmbedError;
use crate::engine::EngineError;
use crate::store::StoreError;

/// Field violations of one request, reported together.
#[derive(Debug, Default)]
pub struct Violations(Vec<(String, String)>);

impl Violations {
    /// Records that `field` is wrong, and why.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push((field.into(), description.into()));
    }

    /// Whether nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// INVALID_ARGUMENT naming every field, with google.rpc.BadRequest details.
    pub fn into_status(self) -> Status {
        let message = self
            .0
            .iter()
            .map(|(f, d)| format!("{f}: {d}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut details = ErrorDetails::new();
        for (field, description) in self.0 {
            details.add_bad_request_violation(field, description);
        }
        Status::with_error_details(
            Code::InvalidArgument,
            format!("invalid request: {message}"),
            details,
        )
    }
}

fn internal(cause: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %cause, "internal error");
    Status::internal("internal error")
}

impl From<EngineError> for Status {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound { .. } => Status::not_found(e.to_string()),
            EngineError::Overloaded(what) => Status::resource_exhausted(what),
            EngineError::Conflict { field, message } => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation("CONFLICT", field, message.clone());
                Status::with_error_details(
                    Code::FailedPrecondition,
                    format!("{field}: {message}"),
                    details,
                )
            }
            EngineError::Internal(cause) => internal(&cause),
            EngineError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "dependency unavailable");
                Status::unavailable("a dependency is unavailable; retry later")
            }
            EngineError::Store(s) => match s {
                StoreError::Unavailable(cause) => {
                    tracing::warn!(error = %cause, "store unavailable");
                    Status::unavailable("the store is unavailable; retry later")
                }
                StoreError::Busy => {
                    Status::resource_exhausted("the store's read queue is full; retry later")
                }
                StoreError::MissingProspect => Status::not_found("prospect not found"),
                StoreError::DimensionMismatch { .. } | StoreError::Backend(_) => internal(&s),
            },
            EngineError::Embed(m) => match m {
                EmbedError::Overloaded => {
                    Status::resource_exhausted("the embedding queue is full; retry later")
                }
                EmbedError::Stopped => Status::unavailable("the embedding model is not running"),
                EmbedError::Load(_) | EmbedError::Model(_) => internal(&m),
            },
        }
    }
}
