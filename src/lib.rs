//! pertinent: scores how relevant a piece of outbound marketing is to one specific prospect.
//!
//! The layer map, outermost first:
//!
//! ```text
//! main.rs ─ config ─ telemetry ─ startup          process wiring; the only place naming adapters
//!               auth/                              API keys, roles, tenants: before any decode
//!               grpc/                              proto <-> domain, validation, error mapping
//!               engine                             async orchestration, caches, limits
//!   scoring/   embedding::Embedder   store::VectorStore      pure maths | ports (+ adapters)
//!               domain                             plain data shared by all layers
//! ```
//!
//! The dependency rule: `grpc -> engine -> {scoring, embedding, store} -> domain`. Generated proto
//! types never leave `grpc/` on the server side (`eval` and `bench` are gRPC *clients* of the
//! service and use them as any client would); fastembed, ort, rusqlite and qdrant-client types
//! never leave their adapter file; `scoring` and `domain` use nothing but std and serde (and
//! `regex` for the gate's merge-field patterns), and take `now` as an argument instead of
//! reading a clock.

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
