//! The bench's reference: the raw model on the same texts, through fastembed directly (one
//! session per worker, batches of 16, as fast as it goes), with the service's model files,
//! runtime and thread settings. The service's own embedder is not used: this tool is a client.

use std::path::Path;
use std::time::Instant;

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

use super::BenchSettings;
use super::corpus::draft_text;

/// The service's longest input in tokens (its `--model-max-tokens` default).
const MAX_TOKENS: usize = 256;
/// Texts per model call.
const BATCH: usize = 16;

/// Texts per second over `texts` new drafts (title and body joined as the service joins them).
pub fn rate(s: &BenchSettings, texts: usize) -> anyhow::Result<f64> {
    let environment = ort::init_from(&s.ort_dylib_path)
        .map_err(|e| anyhow::anyhow!("loading ONNX Runtime: {e}"))?
        .with_name("bench")
        .build()
        .map_err(|e| anyhow::anyhow!("creating the ONNX Runtime environment: {e}"))?;
    let all: Vec<String> = (0..texts as u64)
        .map(|i| {
            let (title, body) = draft_text(1_000_000 + i);
            format!("{title}\n\n{body}")
        })
        .collect();
    let workers = s.embed_workers.max(1);
    let mut models = Vec::with_capacity(workers);
    for _ in 0..workers {
        models.push(load_model(&s.model_dir, &environment, s.embed_threads)?);
    }
    let share = all.len().div_ceil(workers);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let runs: Vec<_> = models
            .iter_mut()
            .zip(all.chunks(share))
            .map(|(model, texts)| {
                scope.spawn(move || -> anyhow::Result<()> {
                    for batch in texts.chunks(BATCH) {
                        model
                            .embed(batch, None)
                            .map_err(|e| anyhow::anyhow!("the model failed: {e}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        runs.into_iter().try_for_each(|run| {
            run.join()
                .map_err(|_| anyhow::anyhow!("a model thread panicked"))?
        })
    })?;
    Ok(texts as f64 / started.elapsed().as_secs_f64())
}

fn load_model(
    dir: &Path,
    environment: &ort::environment::Environment,
    threads: usize,
) -> anyhow::Result<TextEmbedding> {
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.join(name).display()))
    };
    let model = UserDefinedEmbeddingModel::new(
        read("model.onnx")?,
        TokenizerFiles {
            tokenizer_file: read("tokenizer.json")?,
            config_file: read("config.json")?,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        },
    )
    .with_pooling(Pooling::Mean);
    let options = InitOptionsUserDefined::new()
        .with_environment(environment.clone())
        .with_max_length(MAX_TOKENS)
        .with_intra_threads(threads.max(1))
        .with_execution_providers(vec![
            ort::ep::CPU::default().with_arena_allocator(false).build(),
        ]);
    TextEmbedding::try_new_from_user_defined(model, options)
        .map_err(|e| anyhow::anyhow!("building the ONNX session: {e}"))
}
