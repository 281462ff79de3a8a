-- The daily close: each tenant's close settings, and every report it produced.
--
-- A report is never rewritten: (tenant, business_date, revision) is the key, revision 0
-- is the original close and 1, 2, … are amendments, each a new row. The trigger refuses
-- any UPDATE so that rule holds whichever code path touches the table.

CREATE TABLE close_settings (
    tenant_id   TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- HH:MM local: the business day ends (and the next one starts) then
    day_end     TEXT NOT NULL,
    -- IANA name, e.g. America/New_York
    time_zone   TEXT NOT NULL,
    -- when the scheduled close runs, in time_zone (croner syntax, seconds optional)
    cron        TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE closes (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- YYYY-MM-DD
    business_date  TEXT NOT NULL,
    revision       BIGINT NOT NULL CHECK (revision >= 0),
    -- the canonical JSON report and its CSV rendering, byte for byte
    report         TEXT NOT NULL,
    csv            TEXT NOT NULL,
    -- lowercase hex SHA-256 of report
    sha256         TEXT NOT NULL,
    window_start   BIGINT NOT NULL,
    window_end     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, business_date, revision)
);

CREATE TRIGGER closes_append_only BEFORE UPDATE ON closes
BEGIN
    SELECT RAISE(ABORT, 'closes are append-only: store an amendment instead');
END;

-- Money entries by their own time (a refund lands in the day it was given).
CREATE INDEX order_events_at ON order_events (tenant_id, at);
