-- Conversations: one row per guest conversation (its id is also its display session's
-- id), the cart it is building, every turn of its transcript, and every tool call with
-- its result. A tool call's key is (conversation, turn, call id): recording it twice
-- is refused, which is what makes a retried call change nothing twice.

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    category    TEXT NOT NULL,
    user_id     TEXT,
    language    TEXT NOT NULL,
    -- the cart as JSON (restaurant conversations)
    cart        TEXT NOT NULL,
    turns       BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX conversations_tenant ON conversations (tenant_id, updated_at);

CREATE TABLE conversation_turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    turn            BIGINT NOT NULL,
    tenant_id       TEXT NOT NULL,
    user_text       TEXT NOT NULL,
    assistant_text  TEXT NOT NULL,
    model           TEXT NOT NULL,
    target          TEXT NOT NULL,
    status          TEXT NOT NULL,
    error           TEXT,
    input_tokens    BIGINT NOT NULL,
    output_tokens   BIGINT NOT NULL,
    cached_tokens   BIGINT NOT NULL,
    cost_micros     BIGINT NOT NULL,
    ttft_ms         BIGINT,
    latency_ms      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, turn)
);

CREATE TABLE conversation_tool_calls (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    turn            BIGINT NOT NULL,
    call_id         TEXT NOT NULL,
    tenant_id       TEXT NOT NULL,
    position        BIGINT NOT NULL,
    name            TEXT NOT NULL,
    arguments       TEXT NOT NULL,
    ok              BOOLEAN NOT NULL,
    result          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, turn, call_id)
);

-- Each tenant's agent: who it is and what it must do (the system prompt's parts).
CREATE TABLE agent_profiles (
    tenant_id     TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    persona       TEXT NOT NULL,
    instructions  TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);
