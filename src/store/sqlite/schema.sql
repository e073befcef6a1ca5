CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS prospects (
    tenant     TEXT NOT NULL,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    company    TEXT NOT NULL,
    role       TEXT NOT NULL,
    attributes TEXT NOT NULL,
    sample_key INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS prospects_by_sample ON prospects (tenant, sample_key);
CREATE TABLE IF NOT EXISTS signals (
    tenant      TEXT NOT NULL,
    prospect_id TEXT NOT NULL,
    id          TEXT NOT NULL,
    source      TEXT NOT NULL,
    polarity    TEXT NOT NULL,
    observed_at INTEGER NOT NULL,
    weight      REAL NOT NULL,
    text        TEXT NOT NULL,
    vector      BLOB NOT NULL,
    PRIMARY KEY (tenant, prospect_id, id)
);
CREATE TABLE IF NOT EXISTS sends (
    tenant       TEXT NOT NULL,
    send_id      TEXT NOT NULL,
    prospect_id  TEXT NOT NULL,
    decision_id  TEXT NOT NULL,
    candidate_id TEXT NOT NULL,
    channel      TEXT NOT NULL,
    sent_at      INTEGER NOT NULL,
    text         TEXT NOT NULL,
    vector       BLOB NOT NULL,
    PRIMARY KEY (tenant, send_id)
);
CREATE INDEX IF NOT EXISTS sends_by_prospect ON sends (tenant, prospect_id, sent_at);
CREATE TABLE IF NOT EXISTS engagements (
    tenant      TEXT NOT NULL,
    prospect_id TEXT NOT NULL,
    send_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (tenant, prospect_id, send_id, kind)
);
CREATE TABLE IF NOT EXISTS decisions (
    tenant      TEXT NOT NULL,
    send_id     TEXT NOT NULL,
    prospect_id TEXT NOT NULL,
    body        TEXT NOT NULL,
    decided_at  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, send_id)
);
CREATE INDEX IF NOT EXISTS decisions_by_prospect ON decisions (tenant, prospect_id);
CREATE INDEX IF NOT EXISTS sends_by_time ON sends (sent_at);
CREATE INDEX IF NOT EXISTS engagements_by_time ON engagements (at);
CREATE TABLE IF NOT EXISTS suppressions (
    tenant TEXT NOT NULL,
    key    TEXT NOT NULL,
    entry  TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS policies (
    tenant TEXT PRIMARY KEY,
    body   TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS content (
    tenant TEXT NOT NULL,
    id     TEXT NOT NULL,
    kind   TEXT NOT NULL,
    title  TEXT NOT NULL,
    body   TEXT NOT NULL,
    tags   TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (tenant, id)
);
