//! The `Embedder` port: texts in, unit-length vectors out.
//!
//! Adapters: `fastembed` (the real model on ONNX Runtime, on worker threads with micro-batching)
//! and `hashing` (a deterministic bag-of-words embedder for unit tests that need no model).
//! Nothing outside this module names fastembed or ort.

pub mod fastembed;
pub mod hashing;

use async_trait::async_trait;

/// Why texts could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The queue in front of the model is full: the caller should back off.
    #[error("the embedding queue is full")]
    Overloaded,
    /// The model could not be loaded at start-up.
    #[error("loading the embedding model: {0}")]
    Load(String),
    /// The model failed on a batch.
    #[error("the embedding model failed: {0}")]
    Model(String),
    /// The workers are gone (shutting down, or a worker panicked).
    #[error("the embedding workers have stopped")]
    Stopped,
}

/// Turns texts into vectors of `dimension()` floats with unit length.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Length of every vector this embedder returns.
    fn dimension(&self) -> usize;

    /// A name for the model, recorded with stored vectors.
    fn model_id(&self) -> &str;

    /// One vector per text, in order. Runs off the async workers.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// Ok while the model is loaded and its workers run.
    async fn health(&self) -> Result<(), EmbedError>;
}
