//! Schema version 3: leads (see the parent module's docs).
//!
//! Times are integers, milliseconds since the Unix epoch (UTC), as for
//! calls; `signed_at` is the signature's own `t`, in seconds.

use rusqlite::Transaction;

/// `leads`, `lead_events`, `lead_keys`, and `calls` by caller.
pub(crate) fn version_3(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    transaction.execute_batch(
        "CREATE TABLE leads (
            id               TEXT PRIMARY KEY NOT NULL,
            kind             TEXT NOT NULL
                             CHECK (kind IN ('web_form', 'callback', 'voicemail', 'abandoned_call')),
            source           TEXT NOT NULL,
            campaign         TEXT,
            name             TEXT,
            phone            TEXT NOT NULL,
            email            TEXT,
            message          TEXT NOT NULL DEFAULT '',
            postal_code      TEXT,
            consent          TEXT NOT NULL DEFAULT '{}',
            department       TEXT NOT NULL,
            intent           TEXT,
            emergency        INTEGER NOT NULL DEFAULT 0 CHECK (emergency IN (0, 1)),
            branch           TEXT,
            priority         TEXT NOT NULL DEFAULT 'routine'
                             CHECK (priority IN ('routine', 'urgent')),
            owner            TEXT,
            state            TEXT NOT NULL DEFAULT 'waiting'
                             CHECK (state IN ('waiting', 'offered', 'accepted', 'contacted',
                                              'escalated', 'closed')),
            outcome          TEXT
                             CHECK (outcome IS NULL OR outcome IN ('booked', 'reached', 'no_answer',
                                                                   'wrong_number', 'duplicate')),
            created_at       INTEGER NOT NULL,
            respond_by       INTEGER NOT NULL,
            first_contact_at INTEGER,
            snoozed_until    INTEGER,
            signed_at        INTEGER,
            signature        TEXT,
            events           INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX leads_by_created ON leads (created_at, id);
        CREATE INDEX leads_by_state ON leads (state, created_at, id);
        CREATE INDEX leads_by_phone ON leads (phone, created_at);
        CREATE INDEX leads_open ON leads (emergency DESC, created_at) WHERE state <> 'closed';
        CREATE TABLE lead_events (
            lead_id TEXT NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
            seq     INTEGER NOT NULL,
            at      INTEGER NOT NULL,
            event   TEXT NOT NULL,
            agent   TEXT,
            detail  TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (lead_id, seq)
        ) WITHOUT ROWID;
        CREATE TABLE lead_keys (
            source       TEXT NOT NULL,
            key          TEXT NOT NULL,
            lead_id      TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            created_at   INTEGER NOT NULL,
            PRIMARY KEY (source, key)
        ) WITHOUT ROWID;
        CREATE INDEX lead_keys_by_time ON lead_keys (created_at);
        CREATE INDEX calls_by_caller ON calls (caller, started_at);",
    )
}
