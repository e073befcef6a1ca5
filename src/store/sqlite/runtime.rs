//! The threads that own the connections: one writer (group commit, a savepoint per request),
//! reader threads for point reads, a checkpointer, and the blocking pool for scans; and the
//! calls that hand work to them.

use super::*;

/// Most write requests committed together in one transaction.
pub(super) const MAX_BATCH: usize = 256;
/// Write requests that may wait for the writer before callers wait to enqueue.
pub(super) const WRITE_QUEUE: usize = 4096;
/// Idle scan connections kept open.
pub(super) const IDLE_SCANNERS: usize = 4;
/// Point reads that may wait for a reader thread before callers are refused.
pub(super) const READ_QUEUE: usize = 4096;
/// Reader threads (each with its own connection) unless configured otherwise.
pub const DEFAULT_READERS: usize = 4;

/// One point read: runs on a reader thread's connection and answers its caller itself.
pub(super) type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;
/// Called after the batch commit with its outcome; answers the request's caller.
pub(super) type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// One write request: runs inside the batch transaction, returns how to answer its caller.
pub(super) type WriteJob = Box<dyn FnOnce(&Connection) -> Finish + Send>;

impl SqliteStore {
    pub(super) fn unavailable() -> StoreError {
        StoreError::Unavailable("the store is closed".into())
    }

    /// Runs a long read (a tenant-wide scan) on a pooled scan connection, on the blocking pool,
    /// so that it never holds up the reader threads' point reads.
    pub(super) async fn scan<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Self::unavailable());
        }
        let (scanners, closed, path) = (
            self.scanners.clone(),
            self.closed.clone(),
            self.path.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let pooled = scanners
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => {
                    let conn = connect(&path)?;
                    conn.pragma_update(None, "query_only", "ON")
                        .map_err(backend)?;
                    conn
                }
            };
            let result = f(&mut conn);
            let mut idle = scanners.lock().unwrap_or_else(PoisonError::into_inner);
            if !closed.load(Ordering::SeqCst) && idle.len() < IDLE_SCANNERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// Runs a point read on a reader thread. Refused with `Busy` when the read queue is full.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Self::unavailable());
        }
        let (answer, answered) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn: &mut Connection| {
            // The caller may have gone (deadline); nothing to do then.
            let _ = answer.send(f(conn));
        });
        let sent = match &*self.readers.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(readers) => readers.try_send(job),
            None => return Err(Self::unavailable()),
        };
        match sent {
            Ok(()) => {}
            Err(crossbeam_channel::TrySendError::Full(_)) => return Err(StoreError::Busy),
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                return Err(Self::unavailable());
            }
        }
        answered.await.map_err(|_| Self::unavailable())?
    }

    /// Runs a write on the writer thread, in its own savepoint of the next batch; answers once
    /// the batch is durably committed.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_with(true, f).await
    }

    /// As `write`; without a savepoint when `savepoint` is false, for a write that changes
    /// at most one statement's worth (one statement is atomic by itself).
    pub(super) async fn write_with<T, F>(&self, savepoint: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let sender = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(Self::unavailable)?;
        let (answer, answered) = oneshot::channel();
        let job: WriteJob = Box::new(move |conn: &Connection| -> Finish {
            let result = if savepoint {
                in_savepoint(conn, f)
            } else {
                f(conn)
            };
            Box::new(move |commit: Result<(), StoreError>| {
                // The caller may have gone (deadline); nothing to do then.
                let _ = answer.send(commit.and(result));
            })
        });
        sender.send(job).await.map_err(|_| Self::unavailable())?;
        // Queued: this caller no longer keeps the writer alive (see `close`).
        drop(sender);
        answered.await.map_err(|_| Self::unavailable())?
    }
}

/// Runs `f` inside a savepoint: its writes are kept when it succeeds and undone when it fails.
pub(super) fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut statement| statement.execute([]))
            .map_err(backend)
    };
    run("SAVEPOINT request")?;
    let result = f(conn);
    if result.is_err() {
        run("ROLLBACK TO request")?;
    }
    run("RELEASE request")?;
    result
}

/// A reader thread: runs point reads on its own connection until the store closes.
pub(super) fn read_loop(mut conn: Connection, jobs: crossbeam_channel::Receiver<ReadJob>) {
    while let Ok(job) = jobs.recv() {
        job(&mut conn);
    }
}

/// How often the checkpointer copies the WAL back while writes keep coming.
pub(super) const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The checkpointer thread: after commits, at most every `CHECKPOINT_EVERY`, a passive
/// checkpoint, which never blocks the writer or readers. Ends, with a last checkpoint, when the
/// writer has gone.
pub(super) fn checkpoint_loop(
    conn: Connection,
    commits: std::sync::mpsc::Receiver<()>,
    erased: Arc<AtomicBool>,
) {
    let checkpoint = || {
        // After an erasure, TRUNCATE: every frame goes into the database file and the WAL is
        // cut to nothing (it waits for readers of older snapshots, within the busy timeout).
        let truncate = erased.swap(false, Ordering::SeqCst);
        let mode = if truncate { "TRUNCATE" } else { "PASSIVE" };
        let done = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            r.get::<_, i64>(0)
        });
        match done {
            // 1: busy (a reader held an older snapshot); try again after the next commit.
            Ok(1) if truncate => erased.store(true, Ordering::SeqCst),
            Ok(_) => {}
            Err(e) => {
                if truncate {
                    erased.store(true, Ordering::SeqCst);
                }
                tracing::warn!(error = %backend(e), "sqlite: checkpoint failed");
            }
        }
    };
    loop {
        match commits.recv_timeout(CHECKPOINT_EVERY * 5) {
            Ok(()) => {}
            // A truncation that found the WAL busy is tried again without waiting for a commit.
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if erased.load(Ordering::SeqCst) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        std::thread::sleep(CHECKPOINT_EVERY);
        // Commits made while sleeping are covered by this checkpoint.
        let _ = commits.try_recv();
        checkpoint();
    }
    checkpoint();
}

/// The writer thread: takes what is queued, runs it in one transaction, commits, answers, and
/// tells the checkpointer.
pub(super) fn write_loop(
    mut conn: Connection,
    mut jobs: mpsc::Receiver<WriteJob>,
    committed: std::sync::mpsc::SyncSender<()>,
) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let tx = match conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                // Dropping the unrun requests answers their callers with Unavailable.
                tracing::error!(error = %backend(e), "sqlite: cannot begin a transaction");
                continue;
            }
        };
        let finishers: Vec<Finish> = batch.into_iter().map(|job| job(&tx)).collect();
        let outcome = tx.commit().map_err(backend);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "sqlite: commit failed");
        }
        for finish in finishers {
            finish(outcome.clone());
        }
        // Full means a wake-up is pending already.
        let _ = committed.try_send(());
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the SQLite store");
    }
}

/// `Connection::query_row` on a cached statement: the SQL is parsed once per connection, not
/// on every call.
pub(super) fn query_row_cached<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// `Connection::execute` on a cached statement.
pub(super) fn execute_cached<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}
