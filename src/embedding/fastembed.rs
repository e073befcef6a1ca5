//! The real embedder: fastembed's user-defined model on ONNX Runtime loaded at run time.
//!
//! `TextEmbedding::embed` takes `&mut self` and is CPU-bound, so each model session lives on its
//! own OS thread. Requests arrive over one bounded channel shared by the workers; a worker takes
//! what is waiting (up to a small wait bound), sorts the texts by length and runs them through
//! the model in batches bounded by tokens as well as by count, since memory grows with batch
//! size times text length. A full channel is `EmbedError::Overloaded`, never an unbounded queue.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use ort::environment::Environment;
use tokio::sync::oneshot;

use super::{EmbedError, Embedder};

/// What the fastembed adapter is built from (config.rs fills it from the flags).
#[derive(Debug, Clone)]
pub struct FastembedOptions {
    /// The directory holding `MODEL_FILES`.
    pub model_dir: PathBuf,
    /// The ONNX Runtime shared library.
    pub ort_dylib_path: PathBuf,
    pub pooling: ModelPooling,
    /// Longest input in tokens; longer texts are truncated.
    pub max_tokens: usize,
    /// Model threads, each with its own ONNX session.
    pub workers: usize,
    /// ONNX Runtime intra-op threads per worker.
    pub intra_threads: usize,
    /// How long a worker waits for more texts to fill a batch.
    pub batch_wait: Duration,
    /// Upper bounds of one batch, in tokens and in texts.
    pub batch_tokens: usize,
    pub batch_texts: usize,
    /// Requests that may wait for a worker; past that, `EmbedError::Overloaded`.
    pub queue: usize,
}

/// How token embeddings become one sentence vector: as the model was trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelPooling {
    Mean,
    Cls,
}

/// The files a model directory must hold.
const MODEL_FILES: [&str; 5] = [
    "model.onnx",
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
];

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
    /// The caller's span, which the model batch's span belongs to.
    span: tracing::Span,
}

/// The fastembed adapter: a pool of model threads behind a bounded channel.
pub struct FastembedEmbedder {
    sender: Sender<Job>,
    dimension: usize,
    model_id: String,
    alive: Arc<AtomicUsize>,
}

impl FastembedEmbedder {
    /// Loads ONNX Runtime and the model (once per worker) and starts the workers. Blocking: call
    /// from start-up, not from an async worker. Every failure is a clear error, never a panic.
    pub fn load(options: &FastembedOptions) -> Result<Self, EmbedError> {
        let environment = runtime_environment(&options.ort_dylib_path)?;
        let pooling = match options.pooling {
            ModelPooling::Mean => Pooling::Mean,
            ModelPooling::Cls => Pooling::Cls,
        };
        let (sender, receiver) = crossbeam_channel::bounded(options.queue);
        let alive = Arc::new(AtomicUsize::new(0));
        let mut dimension = 0;
        for index in 0..options.workers {
            // Read per worker and moved into the session builder: no second copy of the weights
            // is held while ONNX Runtime builds its own.
            let files = read_model_files(&options.model_dir)?;
            let mut model = build_model(files, pooling.clone(), &environment, options)?;
            let probe = model
                .embed(["dimension probe"], None)
                .map_err(|e| EmbedError::Load(format!("running the model once: {e}")))?;
            dimension = probe.first().map_or(0, Vec::len);
            if dimension == 0 {
                return Err(EmbedError::Load(
                    "the model returned an empty vector".into(),
                ));
            }
            let worker = Worker {
                receiver: receiver.clone(),
                batch_wait: options.batch_wait,
                batch_tokens: options.batch_tokens,
                batch_texts: options.batch_texts,
                max_tokens: options.max_tokens,
            };
            let alive = alive.clone();
            alive.fetch_add(1, Ordering::SeqCst);
            thread::Builder::new()
                .name(format!("embed-{index}"))
                .spawn(move || {
                    worker.run(&mut model);
                    alive.fetch_sub(1, Ordering::SeqCst);
                })
                .map_err(|e| EmbedError::Load(format!("starting a worker thread: {e}")))?;
        }
        let model_id = options
            .model_dir
            .file_name()
            .map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned());
        tracing::info!(
            dimension,
            workers = options.workers,
            intra_threads = options.intra_threads,
            model_dir = %options.model_dir.display(),
            "embedding model loaded"
        );
        Ok(Self {
            sender,
            dimension,
            model_id,
            alive,
        })
    }
}

#[async_trait]
impl Embedder for FastembedEmbedder {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            texts,
            reply,
            span: tracing::Span::current(),
        };
        match self.sender.try_send(job) {
            Ok(()) => {
                metrics::gauge!("pertinent_embedding_queue_depth").set(self.sender.len() as f64);
            }
            Err(TrySendError::Full(_)) => {
                metrics::counter!("pertinent_admission_refusals_total", "reason" => "embedding_queue")
                    .increment(1);
                return Err(EmbedError::Overloaded);
            }
            Err(TrySendError::Disconnected(_)) => return Err(EmbedError::Stopped),
        }
        answer.await.map_err(|_| EmbedError::Stopped)?
    }

    async fn health(&self) -> Result<(), EmbedError> {
        if self.alive.load(Ordering::SeqCst) == 0 {
            return Err(EmbedError::Stopped);
        }
        Ok(())
    }
}

/// ONNX Runtime allows one environment per process, and the library is loaded once; tests start
/// several services in one process, so the environment is kept here and shared.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

fn runtime_environment(path: &Path) -> Result<Environment, EmbedError> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((loaded, environment)) = slot.as_ref() {
        if loaded != path {
            return Err(EmbedError::Load(format!(
                "ONNX Runtime is already loaded from {} in this process; cannot switch to {}",
                loaded.display(),
                path.display()
            )));
        }
        return Ok(environment.clone());
    }
    if !path.is_file() {
        return Err(EmbedError::Load(format!(
            "no ONNX Runtime library at {} (run scripts/fetch-model, or set --ort-dylib-path)",
            path.display()
        )));
    }
    let environment = ort::init_from(path)
        .map_err(|e| EmbedError::Load(format!("loading ONNX Runtime: {e}")))?
        .with_name("pertinent")
        .build()
        .map_err(|e| EmbedError::Load(format!("creating the ONNX Runtime environment: {e}")))?;
    *slot = Some((path.to_path_buf(), environment.clone()));
    Ok(environment)
}

struct ModelFiles {
    onnx: Vec<u8>,
    tokenizer: TokenizerFiles,
}

fn read_model_files(dir: &Path) -> Result<ModelFiles, EmbedError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| {
            EmbedError::Load(format!(
                "reading {}: {e} (the model directory needs {}; run scripts/fetch-model, or set --model-dir)",
                path.display(),
                MODEL_FILES.join(", ")
            ))
        })
    };
    Ok(ModelFiles {
        onnx: read(MODEL_FILES[0])?,
        tokenizer: TokenizerFiles {
            tokenizer_file: read(MODEL_FILES[1])?,
            config_file: read(MODEL_FILES[2])?,
            special_tokens_map_file: read(MODEL_FILES[3])?,
            tokenizer_config_file: read(MODEL_FILES[4])?,
        },
    })
}

fn build_model(
    files: ModelFiles,
    pooling: Pooling,
    environment: &Environment,
    options: &FastembedOptions,
) -> Result<TextEmbedding, EmbedError> {
    let model = UserDefinedEmbeddingModel::new(files.onnx, files.tokenizer).with_pooling(pooling);
    let options = InitOptionsUserDefined::new()
        .with_environment(environment.clone())
        .with_max_length(options.max_tokens)
        .with_intra_threads(options.intra_threads)
        // No CPU arena: an arena keeps the peak of the largest batch ever seen for the life of
        // the process; without it, batch memory is freed after each run.
        .with_execution_providers(vec![
            ort::ep::CPU::default().with_arena_allocator(false).build(),
        ]);
    TextEmbedding::try_new_from_user_defined(model, options)
        .map_err(|e| EmbedError::Load(format!("building the ONNX session: {e}")))
}

struct Worker {
    receiver: Receiver<Job>,
    batch_wait: Duration,
    batch_tokens: usize,
    batch_texts: usize,
    max_tokens: usize,
}

impl Worker {
    /// Serves jobs until every sender is gone.
    fn run(&self, model: &mut TextEmbedding) {
        let mut carried: Option<Job> = None;
        loop {
            let first = match carried.take() {
                Some(job) => job,
                None => match self.receiver.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            let mut jobs = vec![first];
            let mut texts = jobs[0].texts.len();
            let deadline = Instant::now() + self.batch_wait;
            // Gather what arrives within the wait bound, up to one batch worth of texts.
            while texts < self.batch_texts {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.receiver.recv_timeout(left) {
                    Ok(job) if texts + job.texts.len() > self.batch_texts => {
                        carried = Some(job);
                        break;
                    }
                    Ok(job) => {
                        texts += job.texts.len();
                        jobs.push(job);
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            metrics::gauge!("pertinent_embedding_queue_depth").set(self.receiver.len() as f64);
            self.serve(model, jobs);
        }
    }

    /// Embeds every text of `jobs` in length-sorted, token-bounded batches, then replies.
    fn serve(&self, model: &mut TextEmbedding, mut jobs: Vec<Job>) {
        // A caller that went away (cancelled, past its deadline) no longer waits for its
        // vectors: they are not computed.
        let before = jobs.len();
        jobs.retain(|job| !job.reply.is_closed());
        let abandoned = before - jobs.len();
        if abandoned > 0 {
            metrics::counter!("pertinent_embedding_abandoned_total").increment(abandoned as u64);
        }
        if jobs.is_empty() {
            return;
        }
        let mut owners = Vec::new();
        let mut texts = Vec::new();
        let mut replies = Vec::with_capacity(jobs.len());
        // The batch's span is a child of the first caller's and follows from the others'.
        let batch_span = tracing::info_span!(
            parent: &jobs[0].span,
            "model.batch",
            texts = tracing::field::Empty,
            tokens = tracing::field::Empty,
        );
        for job in &jobs[1..] {
            batch_span.follows_from(&job.span);
        }
        let _entered = batch_span.enter();
        for (job_index, job) in jobs.into_iter().enumerate() {
            for text in job.texts {
                owners.push(job_index);
                texts.push(text);
            }
            replies.push(job.reply);
        }
        let tokens: Vec<usize> = texts
            .iter()
            .map(|t| {
                model
                    .tokenizer
                    .encode(t.as_str(), true)
                    .map_or(self.max_tokens, |e| e.len())
                    .min(self.max_tokens)
            })
            .collect();
        batch_span.record("texts", texts.len());
        batch_span.record("tokens", tokens.iter().sum::<usize>());
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| tokens[i]);

        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        let mut failure: Option<String> = None;
        let mut start = 0;
        while start < order.len() && failure.is_none() {
            // Texts are sorted by length, so a batch pads to its last (longest) text.
            let mut end = start;
            while end < order.len() {
                let padded = tokens[order[end]] * (end - start + 1);
                if end > start && (padded > self.batch_tokens || end - start >= self.batch_texts) {
                    break;
                }
                end += 1;
            }
            let batch: Vec<&str> = order[start..end]
                .iter()
                .map(|&i| texts[i].as_str())
                .collect();
            let padded = tokens[order[end - 1]] * batch.len();
            let run = tracing::info_span!("model.run", texts = batch.len(), tokens = padded);
            let started = Instant::now();
            // A panic in the tokenizer or the runtime fails this batch's callers, not the worker.
            let embedded = run.in_scope(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    model.embed(&batch, Some(batch.len()))
                }))
            });
            metrics::histogram!("pertinent_embedding_batch_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("pertinent_embedding_batch_texts").record(batch.len() as f64);
            metrics::histogram!("pertinent_embedding_batch_tokens").record(padded as f64);
            match embedded {
                Ok(Ok(out)) => {
                    for (&i, v) in order[start..end].iter().zip(out) {
                        vectors[i] = Some(v);
                    }
                }
                Ok(Err(e)) => failure = Some(e.to_string()),
                Err(_) => {
                    tracing::error!("the model panicked on a batch; its callers get an error");
                    failure = Some("the model panicked".into());
                }
            }
            start = end;
        }

        let mut per_job: Vec<Vec<Vec<f32>>> = replies.iter().map(|_| Vec::new()).collect();
        if failure.is_none() {
            for (owner, vector) in owners.iter().zip(vectors) {
                match vector {
                    Some(v) => per_job[*owner].push(v),
                    None => failure = Some("a text got no vector".into()),
                }
            }
        }
        for (reply, vectors) in replies.into_iter().zip(per_job) {
            let answer = match &failure {
                Some(message) => Err(EmbedError::Model(message.clone())),
                None => Ok(vectors),
            };
            // The caller may have given up (deadline); nothing to do then.
            let _ = reply.send(answer);
        }
    }
}
