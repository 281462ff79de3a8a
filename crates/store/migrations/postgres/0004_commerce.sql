-- Commerce: each tenant's pricing policy and menu version, the sealed quotes shown to
-- guests, the orders placed from them with their audit trail, and the idempotency keys
-- of POST requests.
--
-- Two constraints carry the correctness: one order per quote (UNIQUE (tenant_id,
-- quote_id)), so a repeated confirmation finds the first order instead of making a
-- second; and the order's `version` (the seq of its last audit entry), which every
-- transition compares and sets in the same statement, so two racing transitions can
-- never both apply. `order_events`' key (tenant, order, seq) is the second line of
-- defence: the same seq can never be recorded twice.

CREATE TABLE tenant_pricing (
    tenant_id     TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- the PricingPolicy as JSON
    policy        TEXT NOT NULL,
    -- bumped on every menu change; quotes priced under an older one are stale
    menu_version  BIGINT NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE quotes (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    hash             TEXT NOT NULL,
    -- the Quote as JSON
    body             TEXT NOT NULL,
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX quotes_conversation ON quotes (tenant_id, conversation_id, created_at);

CREATE TABLE orders (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    quote_id         TEXT NOT NULL,
    status           TEXT NOT NULL,
    -- the seq of the last audit entry: 0 when created, one more per transition
    version          BIGINT NOT NULL,
    total            BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    order_type       TEXT NOT NULL,
    payment_method   TEXT NOT NULL,
    -- the Order as JSON, audit trail included
    body             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, quote_id)
);
CREATE INDEX orders_status ON orders (tenant_id, status, created_at);
CREATE INDEX orders_created ON orders (tenant_id, created_at);
CREATE INDEX orders_conversation ON orders (tenant_id, conversation_id);

CREATE TABLE order_events (
    tenant_id    TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    -- NULL only for the creation entry
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    -- the Actor and AuditAction as JSON
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    at           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, order_id, seq),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);

-- The first response to a POST with an Idempotency-Key, kept 24 h.
CREATE TABLE idempotency_keys (
    -- whose key it is: a tenant, or the hash of the API key that sent it
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    body_hash   TEXT NOT NULL,
    status      INTEGER NOT NULL,
    response    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
