//! Schema version 4: callbacks (see the parent module's docs).

use rusqlite::Transaction;

/// `callbacks` and the index of the waiting ones.
pub(crate) fn version_4(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    transaction.execute_batch(
        "CREATE TABLE callbacks (
            id          TEXT PRIMARY KEY NOT NULL,
            call        TEXT NOT NULL,
            queue       TEXT NOT NULL,
            priority    TEXT NOT NULL CHECK (priority IN ('routine', 'urgent')),
            branch      TEXT,
            language    TEXT,
            number      TEXT NOT NULL,
            enqueued_at INTEGER NOT NULL,
            accepted_at INTEGER NOT NULL,
            attempts    INTEGER NOT NULL DEFAULT 0,
            not_before  INTEGER,
            state       TEXT NOT NULL
                        CHECK (state IN ('waiting', 'connected', 'exhausted', 'withdrawn')),
            agent       TEXT,
            ended_at    INTEGER,
            reason      TEXT
        );
        CREATE INDEX callbacks_waiting ON callbacks (enqueued_at, id) WHERE state = 'waiting';",
    )
}
