"""The SQLite schema of the bot's tables (component ``bot``); the statements and the
row-to-record mapping both stores share are in :mod:`bot.store.sql`."""

from __future__ import annotations

COMPONENT = "bot"
# Append a script to change the schema; never edit one that may have run somewhere. Table
# names carry the component's prefix because all components share one database file.
MIGRATIONS = [
    """
    CREATE TABLE bot_conversations (
        id TEXT PRIMARY KEY,
        channel TEXT NOT NULL,
        external_ref TEXT,
        state TEXT NOT NULL CHECK (state IN ('bot', 'human', 'closed')),
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (channel, external_ref)
    );
    CREATE TABLE bot_turns (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES bot_conversations(id),
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('customer', 'bot', 'agent')),
        text TEXT NOT NULL,
        outcome TEXT CHECK (outcome IN ('generated', 'copied', 'handoff')),
        confidence REAL,
        sources TEXT NOT NULL DEFAULT '[]',
        latency_ms REAL,
        index_version TEXT,
        model_version TEXT,
        created_at REAL NOT NULL,
        UNIQUE (conversation_id, position)
    );
    CREATE TABLE bot_ratings (
        turn_id TEXT PRIMARY KEY REFERENCES bot_turns(id),
        value TEXT NOT NULL CHECK (value IN ('up', 'down')),
        comment TEXT,
        channel TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE bot_flags (
        id INTEGER PRIMARY KEY,
        turn_id TEXT NOT NULL REFERENCES bot_turns(id),
        conversation_id TEXT NOT NULL REFERENCES bot_conversations(id),
        reason TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open'
            CHECK (status IN ('open', 'approved', 'corrected', 'rejected', 'resolved')),
        created_at REAL NOT NULL,
        resolved_at REAL,
        resolved_by TEXT
    );
    CREATE UNIQUE INDEX bot_flags_one_open ON bot_flags(turn_id, reason) WHERE status = 'open';
    CREATE INDEX bot_flags_queue ON bot_flags(status, created_at);
    CREATE TABLE bot_corrections (
        id INTEGER PRIMARY KEY,
        turn_id TEXT REFERENCES bot_turns(id),
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        source_id TEXT UNIQUE,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    # Corrections can be edited and withdrawn (issue 18): who did it and when.
    """
    ALTER TABLE bot_corrections ADD COLUMN edited_by TEXT;
    ALTER TABLE bot_corrections ADD COLUMN edited_at REAL;
    ALTER TABLE bot_corrections ADD COLUMN withdrawn_by TEXT;
    ALTER TABLE bot_corrections ADD COLUMN withdrawn_at REAL;
    """,
    # Questions attached to a correction (issue 20): each is served as one more curated
    # entry, correction:<id>:<position>, with the correction's answer.
    """
    CREATE TABLE bot_correction_questions (
        correction_id INTEGER NOT NULL REFERENCES bot_corrections(id),
        position INTEGER NOT NULL,
        question TEXT NOT NULL,
        attached_by TEXT NOT NULL,
        attached_at REAL NOT NULL,
        PRIMARY KEY (correction_id, position),
        UNIQUE (correction_id, question)
    );
    CREATE INDEX bot_correction_questions_text ON bot_correction_questions(question);
    """,
]
