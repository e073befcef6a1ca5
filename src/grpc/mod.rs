//! The gRPC edge: generated types, the service implementations and their wiring.
//!
//! A handler does three things: validate and convert the request (`convert`), make one engine
//! call, convert the answer back. Errors become statuses in one place (`error`). Generated
//! proto types are used nowhere else in the crate (tests use them as clients do).

pub mod codec;
pub mod conn;
mod content;
pub mod convert;
mod deadline;
pub mod error;
mod gate;
pub mod observe;
mod prospect;
mod scoring;
pub mod tls;

use std::sync::Arc;

use crate::engine::Engine;

pub use content::ContentApi;
pub use convert::RequestLimits;
pub use gate::GateApi;
pub use prospect::ProspectApi;
pub use scoring::ScoringApi;

/// Code generated from proto/pertinent/v1 (package `pertinent.v1`).
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("pertinent.v1");

    /// The encoded descriptors of every proto file, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("pertinent_descriptor");
}

/// The fully qualified names of the services, as health checks and reflection know them.
pub const SERVICE_NAMES: [&str; 4] = [
    "pertinent.v1.ProspectService",
    "pertinent.v1.ContentService",
    "pertinent.v1.ScoringService",
    "pertinent.v1.GateService",
];

/// Returns INVALID_ARGUMENT for every recorded violation unless each named value was parsed.
macro_rules! require {
    ($v:ident; $($x:ident),+ $(,)?) => {
        let ($(Some($x),)+) = ($($x,)+) else {
            return Err($v.into_status());
        };
        if !$v.is_empty() {
            return Err($v.into_status());
        }
    };
}
pub(crate) use require;

/// What every service implementation holds.
#[derive(Clone)]
pub struct Handlers {
    pub engine: Arc<Engine>,
    pub limits: RequestLimits,
}
