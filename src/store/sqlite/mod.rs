//! The embedded store: one SQLite file (rusqlite, bundled), the default adapter of `VectorStore`.
//! rusqlite types never leave this folder; nothing here imports the engine or grpc.
//! Layout: `schema.sql` and its migration (`schema`), the connection-owning threads (`runtime`),
//! rows to records (`rows`). This file is long for one reason: the `VectorStore` impl, one
//! method per port call, which Rust keeps in one block. Durability, group commit and the
//! threads: docs/internals.md, "The embedded store".

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
        let tenant = tenant.to_string();
        let p = prospect.clone();
        self.write(move |conn| {
            let attributes = serde_json::to_string(&p.attributes)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            execute_cached(
                conn,
                "INSERT INTO prospects (tenant, id, name, company, role, attributes, sample_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant, id) DO UPDATE SET
                   name = excluded.name, company = excluded.company, role = excluded.role,
                   attributes = excluded.attributes",
                params![
                    tenant,
                    p.id.as_str(),
                    p.name,
                    p.company,
                    p.role,
                    attributes,
                    sample_key(&p.id)
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<ProspectSummary>, StoreError> {
        let tenant = tenant.to_string();
        let id = id.clone();
        self.read(move |conn| {
            let row = query_row_cached(
                conn,
                "SELECT name, company, role, attributes FROM prospects
                     WHERE tenant = ?1 AND id = ?2",
                params![tenant, id.as_str()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(backend)?;
            let Some((name, company, role, attributes)) = row else {
                return Ok(None);
            };
            let attributes: BTreeMap<String, String> =
                serde_json::from_str(&attributes).map_err(|_| corrupt("attributes"))?;
            let signal_count = signal_count(conn, &tenant, id.as_str())?;
            Ok(Some(ProspectSummary {
                prospect: ProspectRecord {
                    id,
                    name,
                    company,
                    role,
                    attributes,
                },
                signal_count,
            }))
        })
        .await
    }

    async fn delete_prospect(
        &self,
        tenant: &Tenant,
        id: &ProspectId,
    ) -> Result<Option<u32>, StoreError> {
        let tenant = tenant.to_string();
        let id = id.to_string();
        let erased = self.erased.clone();
        self.write(move |conn| {
            erased.store(true, Ordering::SeqCst);
            let tx = conn;
            let signals = execute_cached(
                tx,
                "DELETE FROM signals WHERE tenant = ?1 AND prospect_id = ?2",
                params![tenant, id],
            )
            .map_err(backend)?;
            for table in ["sends", "engagements", "decisions"] {
                execute_cached(
                    tx,
                    &format!("DELETE FROM {table} WHERE tenant = ?1 AND prospect_id = ?2"),
                    params![tenant, id],
                )
                .map_err(backend)?;
            }
            let prospects = execute_cached(
                tx,
                "DELETE FROM prospects WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
            )
            .map_err(backend)?;
            Ok((prospects > 0).then_some(signals as u32))
        })
        .await
    }

    async fn upsert_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        signals: &[SignalRecord],
    ) -> Result<SignalWrite, StoreError> {
        let tenant = tenant.to_string();
        let prospect = prospect.to_string();
        let signals = signals.to_vec();
        let dimension = self.dimension;
        self.write(move |conn| {
            let tx = conn;
            if !prospect_exists(tx, &tenant, &prospect)? {
                return Err(StoreError::MissingProspect);
            }
            let mut write = SignalWrite::default();
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO signals
                           (tenant, prospect_id, id, source, polarity, observed_at, weight, text, vector)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                         ON CONFLICT (tenant, prospect_id, id) DO UPDATE SET
                           source = excluded.source, polarity = excluded.polarity,
                           observed_at = excluded.observed_at, weight = excluded.weight,
                           text = excluded.text, vector = excluded.vector",
                    )
                    .map_err(backend)?;
                let mut exists = tx
                    .prepare_cached(
                        "SELECT 1 FROM signals WHERE tenant = ?1 AND prospect_id = ?2 AND id = ?3",
                    )
                    .map_err(backend)?;
                for s in &signals {
                    if s.vector.len() != dimension {
                        return Err(StoreError::DimensionMismatch {
                            expected: dimension,
                            found: s.vector.len(),
                        });
                    }
                    let existed = exists
                        .exists(params![tenant, prospect, s.id.as_str()])
                        .map_err(backend)?;
                    insert
                        .execute(params![
                            tenant,
                            prospect,
                            s.id.as_str(),
                            s.source.as_str(),
                            s.polarity.as_str(),
                            s.observed_at,
                            s.weight.get(),
                            s.text.as_str(),
                            to_blob(&s.vector),
                        ])
                        .map_err(backend)?;
                    if existed {
                        write.replaced += 1;
                    } else {
                        write.added += 1;
                    }
                }
            }
            write.total = signal_count(tx, &tenant, &prospect)?;
            Ok(write)
        })
        .await
    }

    async fn delete_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        ids: &[SignalId],
    ) -> Result<(u32, u32), StoreError> {
        let tenant = tenant.to_string();
        let prospect = prospect.to_string();
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let erased = self.erased.clone();
        self.write(move |conn| {
            erased.store(true, Ordering::SeqCst);
            let tx = conn;
            if !prospect_exists(tx, &tenant, &prospect)? {
                return Err(StoreError::MissingProspect);
            }
            let mut deleted = 0;
            {
                let mut delete = tx
                    .prepare_cached(
                        "DELETE FROM signals WHERE tenant = ?1 AND prospect_id = ?2 AND id = ?3",
                    )
                    .map_err(backend)?;
                for id in &ids {
                    deleted += delete
                        .execute(params![tenant, prospect, id])
                        .map_err(backend)? as u32;
                }
            }
            let remaining = signal_count(tx, &tenant, &prospect)?;
            Ok((deleted, remaining))
        })
        .await
    }

    async fn prospect_signals(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
    ) -> Result<Option<Vec<SignalRecord>>, StoreError> {
        let tenant = tenant.to_string();
        let prospect = prospect.to_string();
        self.read(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            if !prospect_exists(&tx, &tenant, &prospect)? {
                return Ok(None);
            }
            let mut out = Vec::new();
            {
                let mut select = tx
                    .prepare_cached(
                        "SELECT id, source, polarity, observed_at, weight, text, vector
                         FROM signals WHERE tenant = ?1 AND prospect_id = ?2 ORDER BY id",
                    )
                    .map_err(backend)?;
                let mut rows = select.query(params![tenant, prospect]).map_err(backend)?;
                while let Some(row) = rows.next().map_err(backend)? {
                    out.push(read_signal(row)?);
                }
            }
            tx.commit().map_err(backend)?;
            Ok(Some(out))
        })
        .await
    }

    async fn upsert_content(
        &self,
        tenant: &Tenant,
        content: &ContentRecord,
    ) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        let c = content.clone();
        self.write(move |conn| {
            let tags =
                serde_json::to_string(&c.tags).map_err(|e| StoreError::Backend(e.to_string()))?;
            execute_cached(
                conn,
                "INSERT INTO content (tenant, id, kind, title, body, tags, vector)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (tenant, id) DO UPDATE SET
                   kind = excluded.kind, title = excluded.title, body = excluded.body,
                   tags = excluded.tags, vector = excluded.vector",
                params![
                    tenant,
                    c.id.as_str(),
                    c.kind.as_str(),
                    c.title,
                    c.body.as_str(),
                    tags,
                    to_blob(&c.vector)
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_content(
        &self,
        tenant: &Tenant,
        id: &ContentId,
    ) -> Result<Option<ContentRecord>, StoreError> {
        let tenant = tenant.to_string();
        let id = id.clone();
        self.read(move |conn| {
            let row = query_row_cached(
                conn,
                "SELECT kind, title, body, tags, vector FROM content
                     WHERE tenant = ?1 AND id = ?2",
                params![tenant, id.as_str()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(backend)?;
            let Some((kind, title, body, tags, vector)) = row else {
                return Ok(None);
            };
            Ok(Some(ContentRecord {
                id,
                kind: ContentKind::from_name(&kind).ok_or_else(|| corrupt("content kind"))?,
                title,
                body: Text::parse(body, usize::MAX).map_err(|_| corrupt("content body"))?,
                tags: serde_json::from_str(&tags).map_err(|_| corrupt("content tags"))?,
                vector: from_blob(&vector),
            }))
        })
        .await
    }

    async fn delete_content(&self, tenant: &Tenant, id: &ContentId) -> Result<bool, StoreError> {
        let tenant = tenant.to_string();
        let id = id.to_string();
        let erased = self.erased.clone();
        self.write(move |conn| {
            erased.store(true, Ordering::SeqCst);
            let n = execute_cached(
                conn,
                "DELETE FROM content WHERE tenant = ?1 AND id = ?2",
                params![tenant, id],
            )
            .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn prospect_count(&self, tenant: &Tenant) -> Result<u64, StoreError> {
        let tenant = tenant.to_string();
        self.read(move |conn| {
            query_row_cached(
                conn,
                "SELECT COUNT(*) FROM prospects WHERE tenant = ?1",
                params![tenant],
                |r| r.get::<_, i64>(0).map(|n| n.max(0) as u64),
            )
            .map_err(backend)
        })
        .await
    }

    async fn sample_prospects(
        &self,
        tenant: &Tenant,
        n: usize,
    ) -> Result<Vec<ProspectId>, StoreError> {
        let tenant = tenant.to_string();
        self.read(move |conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT id FROM prospects WHERE tenant = ?1 ORDER BY sample_key, id LIMIT ?2",
                )
                .map_err(backend)?;
            let ids = select
                .query_map(params![tenant, n as i64], |r| r.get::<_, String>(0))
                .map_err(backend)?
                .map(|r| {
                    r.map_err(backend)
                        .and_then(|s| ProspectId::parse(s).map_err(|_| corrupt("prospect id")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ids)
        })
        .await
    }

    async fn nearest_prospects(
        &self,
        tenant: &Tenant,
        vector: &[f32],
        limit: usize,
    ) -> Result<Vec<(ProspectId, f32)>, StoreError> {
        let tenant = tenant.to_string();
        let query = vector.to_vec();
        self.scan(move |conn| {
            let mut select = conn
                .prepare_cached(
                    "SELECT prospect_id, vector FROM signals
                     WHERE tenant = ?1 AND polarity = 'positive'",
                )
                .map_err(backend)?;
            let mut best: HashMap<String, f32> = HashMap::new();
            let mut rows = select.query(params![tenant]).map_err(backend)?;
            let mut buf = Vec::with_capacity(query.len());
            while let Some(row) = rows.next().map_err(backend)? {
                let prospect: String = row.get(0).map_err(backend)?;
                let blob = row
                    .get_ref(1)
                    .map_err(backend)?
                    .as_blob()
                    .map_err(|_| corrupt("vector"))?;
                buf.clear();
                buf.extend(
                    blob.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                let sim = dot(&query, &buf);
                best.entry(prospect)
                    .and_modify(|b| *b = b.max(sim))
                    .or_insert(sim);
            }
            let mut ranked: Vec<(String, f32)> = best.into_iter().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ranked.truncate(limit);
            ranked
                .into_iter()
                .map(|(id, s)| {
                    ProspectId::parse(id)
                        .map(|id| (id, s))
                        .map_err(|_| corrupt("prospect id"))
                })
                .collect()
        })
        .await
    }

    async fn sends(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        since: Millis,
        limit: usize,
    ) -> Result<Vec<SendRecord>, StoreError> {
        let tenant = tenant.to_string();
        let prospect = prospect.to_string();
        self.read(move |conn| read_sends(conn, &tenant, &prospect, since, limit, true))
            .await
    }

    async fn gate_history(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        window: &HistoryWindow,
    ) -> Result<GateRead, StoreError> {
        let tenant = tenant.to_string();
        let prospect = prospect.to_string();
        let w = *window;
        // One read transaction, so that both lists are of one moment.
        self.read(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let sends = read_sends(&tx, &tenant, &prospect, w.sends_since, w.limit, false)?;
            let replies = read_replies(&tx, &tenant, &prospect, w.replies_since, w.limit)?;
            tx.commit().map_err(backend)?;
            Ok(GateRead { sends, replies })
        })
        .await
    }

    async fn record_send(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        send: &SendRecord,
    ) -> Result<Option<(ProspectId, SendRecord)>, StoreError> {
        let tenant = tenant.to_string();
        let prospect = prospect.to_string();
        let send = send.clone();
        self.write(move |conn| {
            if !prospect_exists(conn, &tenant, &prospect)? {
                return Err(StoreError::MissingProspect);
            }
            let existing = query_row_cached(
                conn,
                "SELECT prospect_id, decision_id, candidate_id, channel, sent_at, text, vector
                 FROM sends WHERE tenant = ?1 AND send_id = ?2",
                params![tenant, send.send_id.as_str()],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        SendRecord {
                            send_id: send.send_id.clone(),
                            decision_id: r.get(1)?,
                            candidate_id: r.get(2)?,
                            channel: r.get(3)?,
                            sent_at: r.get(4)?,
                            text: r.get(5)?,
                            vector: from_blob(&r.get::<_, Vec<u8>>(6)?),
                        },
                    ))
                },
            )
            .optional()
            .map_err(backend)?;
            if let Some((owner, first)) = existing {
                let owner = ProspectId::parse(owner).map_err(|_| corrupt("prospect id"))?;
                return Ok(Some((owner, first)));
            }
            execute_cached(
                conn,
                "INSERT INTO sends
                   (tenant, send_id, prospect_id, decision_id, candidate_id, channel, sent_at, text, vector)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    tenant,
                    send.send_id.as_str(),
                    prospect,
                    send.decision_id,
                    send.candidate_id,
                    send.channel,
                    send.sent_at,
                    send.text,
                    to_blob(&send.vector)
                ],
            )
            .map_err(backend)?;
            Ok(None)
        })
        .await
    }

    async fn record_engagement(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        engagement: &EngagementRecord,
    ) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        let prospect = prospect.to_string();
        let e = engagement.clone();
        self.write(move |conn| {
            let tx = conn;
            if !prospect_exists(tx, &tenant, &prospect)? {
                return Err(StoreError::MissingProspect);
            }
            execute_cached(
                tx,
                "INSERT INTO engagements (tenant, prospect_id, send_id, kind, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant, prospect_id, send_id, kind) DO UPDATE SET at = excluded.at",
                params![tenant, prospect, e.send_id.as_str(), e.kind.as_str(), e.at],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn engagements(
        &self,
        tenant: &Tenant,
        prospect: &ProspectId,
        limit: usize,
    ) -> Result<Vec<EngagementRecord>, StoreError> {
        let tenant = tenant.to_string();
        let prospect = prospect.to_string();
        self.read(move |conn| read_engagements(conn, &tenant, &prospect, limit))
            .await
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
        let tenant = tenant.to_string();
        let prospect = prospect.to_string();
        let send_id = send_id.to_string();
        let decision = decision.to_owned();
        let send = send.cloned();
        // Most checks write a decision and no send: one statement, which is atomic without a
        // savepoint. It inserts only for an existing prospect and a new send id.
        self.write_with(send.is_some(), move |conn| {
            let inserted = execute_cached(
                conn,
                "INSERT INTO decisions (tenant, send_id, prospect_id, body, decided_at)
                 SELECT ?1, ?2, ?3, ?4, ?5
                 WHERE EXISTS (SELECT 1 FROM prospects WHERE tenant = ?1 AND id = ?3)
                 ON CONFLICT (tenant, send_id) DO NOTHING",
                params![tenant, send_id, prospect, decision, decided_at],
            )
            .map_err(backend)?;
            if inserted == 0 {
                let existing: Option<String> = query_row_cached(
                    conn,
                    "SELECT body FROM decisions WHERE tenant = ?1 AND send_id = ?2",
                    params![tenant, send_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
                return match existing {
                    Some(first) => Ok(Some(first)),
                    None => Err(StoreError::MissingProspect),
                };
            }
            if let Some(send) = send {
                execute_cached(
                    conn,
                    "INSERT INTO sends
                       (tenant, send_id, prospect_id, decision_id, candidate_id, channel, sent_at, text, vector)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (tenant, send_id) DO NOTHING",
                    params![
                        tenant,
                        send.send_id.as_str(),
                        prospect,
                        send.decision_id,
                        send.candidate_id,
                        send.channel,
                        send.sent_at,
                        send.text,
                        to_blob(&send.vector)
                    ],
                )
                .map_err(backend)?;
            }
            Ok(None)
        })
        .await
    }

    async fn get_decision(
        &self,
        tenant: &Tenant,
        send: &SendId,
    ) -> Result<Option<String>, StoreError> {
        let tenant = tenant.to_string();
        let send = send.to_string();
        self.read(move |conn| {
            query_row_cached(
                conn,
                "SELECT body FROM decisions WHERE tenant = ?1 AND send_id = ?2",
                params![tenant, send],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_policy(&self, tenant: &Tenant, policy: &str) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        let policy = policy.to_owned();
        self.write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO policies (tenant, body) VALUES (?1, ?2)
                 ON CONFLICT (tenant) DO UPDATE SET body = excluded.body",
                params![tenant, policy],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_policy(&self, tenant: &Tenant) -> Result<Option<String>, StoreError> {
        let tenant = tenant.to_string();
        self.read(move |conn| {
            query_row_cached(
                conn,
                "SELECT body FROM policies WHERE tenant = ?1",
                params![tenant],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn put_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
        entry: &str,
    ) -> Result<(), StoreError> {
        let (tenant, key, entry) = (tenant.to_string(), key.to_owned(), entry.to_owned());
        self.write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO suppressions (tenant, key, entry) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant, key) DO UPDATE SET entry = excluded.entry",
                params![tenant, key, entry],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_suppression(
        &self,
        tenant: &Tenant,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_owned());
        self.read(move |conn| {
            query_row_cached(
                conn,
                "SELECT entry FROM suppressions WHERE tenant = ?1 AND key = ?2",
                params![tenant, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn delete_suppression(&self, tenant: &Tenant, key: &str) -> Result<bool, StoreError> {
        let (tenant, key) = (tenant.to_string(), key.to_owned());
        self.write(move |conn| {
            let n = execute_cached(
                conn,
                "DELETE FROM suppressions WHERE tenant = ?1 AND key = ?2",
                params![tenant, key],
            )
            .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn suppressions(&self) -> Result<Vec<(Tenant, String, String)>, StoreError> {
        self.scan(|conn| {
            let mut select = conn
                .prepare("SELECT tenant, key, entry FROM suppressions ORDER BY tenant, key")
                .map_err(backend)?;
            let mut rows = select.query([]).map_err(backend)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(backend)? {
                let tenant: String = r.get(0).map_err(backend)?;
                out.push((
                    Tenant::parse(tenant).map_err(|_| corrupt("tenant"))?,
                    r.get(1).map_err(backend)?,
                    r.get(2).map_err(backend)?,
                ));
            }
            Ok(out)
        })
        .await
    }

    async fn secret(&self, name: &str) -> Result<String, StoreError> {
        let key = format!("secret:{name}");
        let fresh = random_secret()?;
        // One statement each in the writer's transaction: the first caller's value stays.
        self.write(move |conn| {
            execute_cached(
                conn,
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, fresh],
            )
            .map_err(backend)?;
            query_row_cached(
                conn,
                "SELECT value FROM meta WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .map_err(backend)
        })
        .await
    }

    async fn purge_before(&self, before: Millis) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let mut purged = 0u64;
            for (table, column) in [
                ("decisions", "decided_at"),
                ("sends", "sent_at"),
                ("engagements", "at"),
            ] {
                purged += execute_cached(
                    conn,
                    &format!("DELETE FROM {table} WHERE {column} < ?1"),
                    params![before],
                )
                .map_err(backend)? as u64;
            }
            Ok(purged)
        })
        .await
    }
}
