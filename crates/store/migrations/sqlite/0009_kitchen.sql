-- Kitchen tickets and receipts: at most one of each per order, which is what makes
-- "the ticket fires exactly once" and "one receipt per paid order" hold however many
-- times a payment event, a redirect or a staff tap arrives.

CREATE TABLE kitchen_tickets (
    tenant_id  TEXT NOT NULL,
    order_id   TEXT NOT NULL,
    -- the number the kitchen calls out, counting up per tenant
    number     BIGINT NOT NULL,
    fired_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, order_id),
    UNIQUE (tenant_id, number),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE order_receipts (
    tenant_id   TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    -- where the HTML receipt is in object storage, and the SHA-256 of its bytes
    path        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    written_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, order_id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);
