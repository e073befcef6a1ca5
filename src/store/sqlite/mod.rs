//! The embedded store: one SQLite file (rusqlite, bundled), the default adapter of `VectorStore`.
//! rusqlite types never leave this folder; nothing here imports the engine or grpc.
//! Layout: `schema.sql` and its migration (`schema`), the connection-owning threads (`runtime`),
//! rows to records (`rows`), prospects, signals and content (`records`), the gate's records
//! (`gate`); this file opens the store and holds the `VectorStore` impl, which calls them.
//! Durability, group commit and the threads: docs/internals.md, "The embedded store".

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    GateRead, HistoryWindow, ProspectSummary, SignalWrite, StoreError, VectorStore, random_secret,
    sample_key,
};
use crate::domain::{
    ContentId, ContentKind, ContentRecord, EngagementKind, EngagementRecord, Millis, Polarity,
    ProspectId, ProspectRecord, SendId, SendRecord, SignalId, SignalRecord, SignalSource, Tenant,
    Text, Weight, dot,
};

/// The file name inside the data directory.
pub const FILE_NAME: &str = "pertinent.sqlite3";

mod gate;
mod records;
mod rows;
mod runtime;
mod schema;

use rows::*;
use runtime::*;
use schema::*;

pub use runtime::DEFAULT_READERS;

/// What the SQLite adapter is built from (config.rs fills it from the flags).
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The directory of the database file, created if missing.
    pub data_dir: PathBuf,
    /// Reader threads for point reads, each with its own connection.
    pub readers: usize,
}

/// How long `close` waits for the writer to commit what is queued.
const WRITER_JOIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The embedded SQLite adapter.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<WriteJob>>>,
    /// The writer thread, joined by `close` once its queue is committed.
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Option<crossbeam_channel::Sender<ReadJob>>>,
    scanners: Arc<Mutex<Vec<Connection>>>,
    closed: Arc<AtomicBool>,
    /// An erasure committed since the last checkpoint: the next one truncates the WAL, so
    /// that no old page image with erased text stays in it.
    erased: Arc<AtomicBool>,
    dimension: usize,
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` for vectors of `dimension` floats. A
    /// store written with another dimension is refused: its vectors would be meaningless.
    pub fn open(data_dir: &Path, dimension: usize) -> Result<Self, StoreError> {
        Self::open_with(
            &SqliteOptions {
                data_dir: data_dir.to_path_buf(),
                readers: DEFAULT_READERS,
            },
            dimension,
        )
    }

    /// As `open`, with the directory and the reader threads of `options`.
    pub fn open_with(options: &SqliteOptions, dimension: usize) -> Result<Self, StoreError> {
        let (data_dir, readers) = (options.data_dir.as_path(), options.readers);
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!("creating {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(FILE_NAME);
        let conn = connect(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(backend)?;
        conn.execute_batch(SCHEMA).map_err(backend)?;
        migrate(&conn)?;
        let stored: Option<String> = query_row_cached(
            &conn,
            "SELECT value FROM meta WHERE key = 'dimension'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
        match stored {
            Some(found) => {
                let found: usize = found
                    .parse()
                    .map_err(|_| StoreError::Backend("corrupt meta.dimension".into()))?;
                if found != dimension {
                    return Err(StoreError::DimensionMismatch {
                        expected: dimension,
                        found,
                    });
                }
            }
            None => {
                execute_cached(
                    &conn,
                    "INSERT INTO meta (key, value) VALUES ('dimension', ?1)",
                    params![dimension.to_string()],
                )
                .map_err(backend)?;
            }
        }
        // Checkpoints (copying the WAL back into the database file, with its own fsync) run on
        // a thread of their own, so that commits never wait behind one.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(backend)?;
        let checkpoints = connect(&path)?;
        // Erased rows are overwritten with zeros, in the database file and the WAL alike.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(backend)?;
        let erased = Arc::new(AtomicBool::new(false));
        let (committed, commits) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn({
                let erased = erased.clone();
                move || checkpoint_loop(checkpoints, commits, erased)
            })
            .map_err(|e| StoreError::Unavailable(format!("starting the checkpointer: {e}")))?;
        let (reads, read_jobs) = crossbeam_channel::bounded::<ReadJob>(READ_QUEUE);
        for n in 0..readers.max(1) {
            let conn = connect(&path)?;
            conn.pragma_update(None, "query_only", "ON")
                .map_err(backend)?;
            let jobs = read_jobs.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{n}"))
                .spawn(move || read_loop(conn, jobs))
                .map_err(|e| StoreError::Unavailable(format!("starting a reader: {e}")))?;
        }
        let (sender, receiver) = mpsc::channel(WRITE_QUEUE);
        let writer_thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, receiver, committed))
            .map_err(|e| StoreError::Unavailable(format!("starting the writer: {e}")))?;
        Ok(Self {
            path,
            writer: Mutex::new(Some(sender)),
            writer_thread: Mutex::new(Some(writer_thread)),
            readers: Mutex::new(Some(reads)),
            scanners: Arc::new(Mutex::new(Vec::new())),
            closed: Arc::new(AtomicBool::new(false)),
            erased,
            dimension,
        })
    }
}

#[async_trait]
impl VectorStore for SqliteStore {
    fn adapter(&self) -> &'static str {
        "sqlite"
    }

    /// Closes the database: queued writes are committed and the writer thread is joined, then
    /// every later call is `StoreError::Unavailable`. For orderly shutdown. The join blocks the
    /// caller for the last commit, which needs no async runtime (replies are oneshot sends).
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // Dropping the sender lets the writer finish its queue and close its connection.
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let writer = self
            .writer_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Bounded: a caller still waiting to queue a write holds a sender, and with it the
        // writer, until the runtime polls it again, which a caller of `close` may be blocking.
        if let Some(writer) = writer {
            let (done, finished) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = done.send(writer.join().is_ok());
            });
            match finished.recv_timeout(WRITER_JOIN) {
                Ok(true) => {}
                Ok(false) => tracing::error!("the SQLite writer thread had panicked"),
                Err(_) => tracing::warn!(
                    "the SQLite writer did not finish within {} s of closing",
                    WRITER_JOIN.as_secs()
                ),
            }
        }
        // Dropping the sender ends the reader threads once they have answered what is queued.
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.scanners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            query_row_cached(conn, "SELECT 1", [], |_| Ok(()))
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })
        .await
    }

    async fn upsert_prospect(
        &self,
        tenant: &Tenant,
        prospect: &ProspectRecord,
    ) -> Result<(), StoreError> {
        records::upsert_prospect(self, tenant, prospect).await
    }

    async fn get_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<ProspectSummary>, StoreError> {
        records::get_prospect(self, tenant, id).await
    }

    async fn delete_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<u32>, StoreError> {
        records::delete_prospect(self, tenant, id).await
    }

    async fn upsert_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        signals: &[SignalRecord],
    ) -> Result<SignalWrite, StoreError> {
        records::upsert_signals(self, tenant, prospect, signals).await
    }

    async fn delete_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        ids: &[SignalId],
    ) -> Result<(u32, u32), StoreError> {
        records::delete_signals(self, tenant, prospect, ids).await
    }

    async fn prospect_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Option<Vec<SignalRecord>>, StoreError> {
        records::prospect_signals(self, tenant, prospect).await
    }

    async fn upsert_content(
        &self,
        tenant: &Tenant,
        content: &ContentRecord,
    ) -> Result<(), StoreError> {
        records::upsert_content(self, tenant, content).await
    }

    async fn get_content(
        &self,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<Option<ContentRecord>, StoreError> {
        records::get_content(self, tenant, id).await
    }

    async fn delete_content(&self, tenant: &Tenant, id: &ContentId) -> Result<bool, StoreError> {
        records::delete_content(self, tenant, id).await
    }

    async fn prospect_count(&self, tenant: &Tenant) -> Result<u64, StoreError> {
        records::prospect_count(self, tenant).await
    }

    async fn sample_prospects(
        &self,
        tenant: &Tenant,
        n: usize,
    ) -> Result<Vec<ProspectId>, StoreError> {
        records::sample_prospects(self, tenant, n).await
    }

    async fn nearest_prospects(
        &self,
        tenant: &Tenant,
        vector: &[f32],
        limit: usize,
    ) -> Result<Vec<(ProspectId, f32)>, StoreError> {
        records::nearest_prospects(self, tenant, vector, limit).await
    }

    async fn sends(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<SendRecord>, StoreError> {
        gate::sends(self, tenant, prospect, since, limit).await
    }

    async fn gate_history(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        window: &HistoryWindow,
    ) -> Result<GateRead, StoreError> {
        gate::gate_history(self, tenant, prospect, window).await
    }

    async fn record_send(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send: &SendRecord,
    ) -> Result<Option<(ProspectId, SendRecord)>, StoreError> {
        gate::record_send(self, tenant, prospect, send).await
    }

    async fn record_engagement(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        engagement: &EngagementRecord,
    ) -> Result<(), StoreError> {
        gate::record_engagement(self, tenant, prospect, engagement).await
    }

    async fn engagements(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        limit: usize,
    ) -> Result<Vec<EngagementRecord>, StoreError> {
        gate::engagements(self, tenant, prospect, limit).await
    }

    async fn record_decision(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send_id: &SendId,
        decision: &str,
        decided_at: Millis,
        send: Option<&SendRecord>,
    ) -> Result<Option<String>, StoreError> {
        gate::record_decision(self, tenant, prospect, send_id, decision, decided_at, send).await
    }

    async fn get_decision(
        &self,
        tenant: &Tenant,
        send: &SendId,
    ) -> Result<Option<String>, StoreError> {
        gate::get_decision(self, tenant, send).await
    }

    async fn put_policy(&self, tenant: &Tenant, policy: &str) -> Result<(), StoreError> {
        gate::put_policy(self, tenant, policy).await
    }

    async fn get_policy(&self, tenant: &Tenant) -> Result<Option<String>, StoreError> {
        gate::get_policy(self, tenant).await
    }

    async fn put_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
        entry: &str,
    ) -> Result<(), StoreError> {
        gate::put_suppression(self, tenant, key, entry).await
    }

    async fn get_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        gate::get_suppression(self, tenant, key).await
    }

    async fn delete_suppression(&self, tenant: &Tenant, key: &str) -> Result<bool, StoreError> {
        gate::delete_suppression(self, tenant, key).await
    }

    async fn suppressions(&self) -> Result<Vec<(Tenant, String, String)>, StoreError> {
        gate::suppressions(self).await
    }

    async fn secret(&self, name: &str) -> Result<String, StoreError> {
        gate::secret(self, name).await
    }

    async fn purge_before(&self, before: Millis) -> Result<u64, StoreError> {
        gate::purge_before(self, before).await
    }
}
