-- Payments: Stripe Checkout Sessions made for orders, every payment event received
-- (deduplicated on the provider's event id), and refunds.
--
-- `payment_events`' primary key is what makes a webhook delivered five times count
-- once: the event row is inserted in the same transaction as the order's payment (or
-- flag), so either both are committed or neither is, and a second delivery finds the
-- row and commits nothing.

CREATE TABLE checkout_sessions (
    provider        TEXT NOT NULL,
    -- the provider's id (cs_…)
    session_id      TEXT NOT NULL,
    tenant_id       TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    -- 0 for the order's first session, one more per replacement (an expired one):
    -- part of the Idempotency-Key of the create call, so a retried create never
    -- makes two sessions
    attempt         BIGINT NOT NULL,
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    url             TEXT NOT NULL,
    -- open, complete or expired
    status          TEXT NOT NULL,
    payment_intent  TEXT,
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (provider, session_id),
    UNIQUE (tenant_id, order_id, attempt),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE payment_events (
    provider     TEXT NOT NULL,
    -- the provider's event id (evt_…, globally unique at Stripe), or
    -- redirect:<session id> for a success redirect
    event_id     TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    -- the event type, e.g. checkout.session.completed
    kind         TEXT NOT NULL,
    amount       BIGINT,
    currency     TEXT,
    received_at  BIGINT NOT NULL,
    -- paid, already_paid, flagged, expired, pending, refused
    outcome      TEXT NOT NULL,
    PRIMARY KEY (provider, event_id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX payment_events_order ON payment_events (tenant_id, order_id);

CREATE TABLE refunds (
    tenant_id     TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    id            TEXT NOT NULL,
    amount        BIGINT NOT NULL,
    -- stripe or counter
    provider      TEXT NOT NULL,
    -- the provider's refund id (re_…) once it accepted
    provider_ref  TEXT,
    -- pending (reserved, the provider not yet answered), succeeded or failed
    status        TEXT NOT NULL,
    reason        TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX refunds_order ON refunds (tenant_id, order_id);
