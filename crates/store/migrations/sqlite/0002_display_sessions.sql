-- Display sessions: one row per conversation, its ordered log of display updates, and
-- its current components (one row each, so state is not bounded by one row's size).

CREATE TABLE display_sessions (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    category    TEXT NOT NULL,
    -- the init body as JSON, compared for idempotent re-init
    init        TEXT NOT NULL,
    -- the last assigned seq (0 before the first update); no gaps
    seq         BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX display_sessions_tenant ON display_sessions (tenant_id, updated_at);

CREATE TABLE display_updates (
    session_id  TEXT NOT NULL REFERENCES display_sessions (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    tenant_id   TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE display_components (
    session_id  TEXT NOT NULL REFERENCES display_sessions (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (session_id, key)
);
