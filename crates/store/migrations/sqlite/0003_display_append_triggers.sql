-- One statement per display update on SQLite: inserting into display_updates checks the
-- expected seq and tenant, advances the session's seq and applies the component change,
-- all inside the INSERT's own transaction. One round trip and one commit per update,
-- instead of BEGIN, three statements and COMMIT.

CREATE TRIGGER display_updates_check BEFORE INSERT ON display_updates
BEGIN
    SELECT RAISE(ABORT, 'seq_conflict')
    WHERE NOT EXISTS (
        SELECT 1 FROM display_sessions
        WHERE id = NEW.session_id AND tenant_id = NEW.tenant_id AND seq = NEW.seq - 1
    );
END;

CREATE TRIGGER display_updates_apply AFTER INSERT ON display_updates
BEGIN
    UPDATE display_sessions SET seq = NEW.seq, updated_at = NEW.created_at
    WHERE id = NEW.session_id;
    DELETE FROM display_components
    WHERE session_id = NEW.session_id
      AND key = json_extract(NEW.body, '$.key')
      AND json_extract(NEW.body, '$.op') = 'remove';
    INSERT INTO display_components (session_id, key, tenant_id, seq, body)
    SELECT NEW.session_id, json_extract(NEW.body, '$.key'), NEW.tenant_id, NEW.seq, NEW.body
    WHERE json_extract(NEW.body, '$.op') IS NULL AND json_extract(NEW.body, '$.key') IS NOT NULL
    ON CONFLICT (session_id, key) DO UPDATE SET seq = excluded.seq, body = excluded.body;
END;
