//! The store's schema (`schema.sql`), its migrations from earlier versions, and connections.

use super::*;

/// The tables and indexes, created if missing.
pub(super) const SCHEMA: &str = include_str!("schema.sql");

/// Brings a store written by an earlier version up to `SCHEMA`.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    // Decisions gained `decided_at` for retention. Those stored before count as decided now,
    // so that retention starts from the upgrade instead of purging them at once.
    let has_decided_at = conn
        .prepare("SELECT 1 FROM pragma_table_info('decisions') WHERE name = 'decided_at'")
        .and_then(|mut q| q.exists([]))
        .map_err(backend)?;
    if !has_decided_at {
        conn.execute_batch(&format!(
            "ALTER TABLE decisions ADD COLUMN decided_at INTEGER NOT NULL DEFAULT 0;
             UPDATE decisions SET decided_at = {};",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        ))
        .map_err(backend)?;
    }
    conn.execute_batch("CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (decided_at);")
        .map_err(backend)
}

pub(super) fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("opening {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    Ok(conn)
}
