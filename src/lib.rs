//! pertinent: scores how relevant a piece of outbound marketing is to one specific prospect.
//!
//! The layer map, outermost first (the benchmark and the evaluation are clients of the API, in
//! the `tools/` workspace member, not here):
//!
//! ```text
//! main.rs ─ startup ─ config ─ telemetry      process wiring; startup alone names adapters
//!           auth/                             API keys, roles, tenants: before any decode
//!           grpc/                             proto <-> domain, validation, error mapping
//!           engine/                           async orchestration, caches, locks, limits
//!   scoring/   embedding::Embedder   store::VectorStore    pure maths | ports (+ adapters)
//!           domain                            plain data shared by all layers
//! ```
//!
//! The dependency rule: `grpc -> engine -> {scoring, embedding, store} -> domain`; `config`
//! imports only the option types it fills. Generated proto types never leave `grpc/`;
//! fastembed, ort, rusqlite and qdrant-client types never leave their adapter; `scoring` takes
//! `now` as an argument. tests/api/layers.rs checks the rule and that no module imports one
//! that imports it back.

pub mod auth;
pub mod config;
pub mod domain;
pub mod embedding;
pub mod engine;
pub mod grpc;
pub mod scoring;
pub mod startup;
pub mod store;
pub mod telemetry;
