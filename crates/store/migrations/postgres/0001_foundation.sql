-- Foundation schema (PostgreSQL). Every tenant-owned row carries tenant_id.
-- Timestamps are Unix milliseconds; money is integer minor units.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL CHECK (category IN ('restaurant', 'financial')),
    currency    TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    theme       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- A key may open several tenants (one operator, many venues); each grant is a row.
CREATE TABLE api_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_hash    TEXT NOT NULL,
    label       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    PRIMARY KEY (tenant_id, key_hash)
);
CREATE INDEX api_keys_hash ON api_keys (key_hash);

CREATE TABLE menu_sections (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    position    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE menu_items (
    tenant_id   TEXT NOT NULL,
    id          TEXT NOT NULL,
    section_id  TEXT NOT NULL,
    position    BIGINT NOT NULL,
    name        TEXT NOT NULL,
    price       BIGINT NOT NULL CHECK (price >= 0),
    available   BOOLEAN NOT NULL,
    -- description, tags, aliases, image and modifier groups as JSON
    body        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, section_id) REFERENCES menu_sections (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE fin_records (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('client', 'account', 'transaction', 'product')),
    id          TEXT NOT NULL,
    -- the owning client (accounts) or account (transactions); '' otherwise
    parent_id   TEXT NOT NULL,
    position    BIGINT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
);
CREATE INDEX fin_records_parent ON fin_records (tenant_id, kind, parent_id);
