-- Serves: audit trail taxonomy (audit events API filters by category and severity) and the
-- append-only guarantee of the audit trail: rows can be inserted, never updated or deleted.

-- +goose Up
ALTER TABLE audit_events ADD COLUMN category TEXT NOT NULL DEFAULT 'system';
ALTER TABLE audit_events ADD COLUMN severity TEXT NOT NULL DEFAULT 'info';

-- Backfill: the category is the first segment of the dotted action name.
UPDATE audit_events
SET category = CASE split_part(action, '.', 1)
        WHEN 'auth' THEN 'auth'
        WHEN 'session' THEN 'auth'
        WHEN 'host' THEN 'host'
        WHEN 'scan' THEN 'scan'
        WHEN 'config' THEN 'config'
        WHEN 'user' THEN 'user'
        WHEN 'role' THEN 'user'
        ELSE 'system'
    END,
    severity = CASE WHEN outcome = 'denied' THEN 'warning' WHEN outcome = 'failure' THEN 'error' ELSE 'info' END;

ALTER TABLE audit_events ADD CONSTRAINT audit_events_category_check
    CHECK (category IN ('auth', 'host', 'scan', 'config', 'user', 'report', 'alert', 'system'));
ALTER TABLE audit_events ADD CONSTRAINT audit_events_severity_check
    CHECK (severity IN ('info', 'notice', 'warning', 'error', 'critical'));

CREATE INDEX idx_audit_events_category ON audit_events (category, occurred_at DESC);
CREATE INDEX idx_audit_events_severity ON audit_events (occurred_at DESC) WHERE severity IN ('error', 'critical');

-- +goose StatementBegin
CREATE FUNCTION ow_audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER trg_audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION ow_audit_events_append_only();

-- +goose Down
DROP TRIGGER IF EXISTS trg_audit_events_append_only ON audit_events;
DROP FUNCTION IF EXISTS ow_audit_events_append_only();
DROP INDEX IF EXISTS idx_audit_events_severity;
DROP INDEX IF EXISTS idx_audit_events_category;
ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_events_severity_check;
ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_events_category_check;
ALTER TABLE audit_events DROP COLUMN IF EXISTS severity;
ALTER TABLE audit_events DROP COLUMN IF EXISTS category;
