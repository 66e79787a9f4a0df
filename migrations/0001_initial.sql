-- Serves: audit trail (audit events API) and the shared updated_at bookkeeping every mutable table uses.
-- Baseline of the OpenWatch schema. gen_random_uuid() is built into PostgreSQL 13+, so no extension
-- is needed and the schema stays installable by an unprivileged database owner.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION ow_set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

COMMENT ON FUNCTION ow_set_updated_at() IS 'BEFORE UPDATE trigger: stamps updated_at on every row change';

CREATE TABLE audit_events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Snapshot of who acted. Deliberately no foreign key: the trail must outlive the user row.
    actor_id UUID,
    actor_name TEXT NOT NULL DEFAULT 'system',
    actor_ip INET,
    action TEXT NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    target_type TEXT,
    target_id TEXT,
    outcome TEXT NOT NULL DEFAULT 'success' CHECK (outcome IN ('success', 'failure', 'denied')),
    details JSONB NOT NULL DEFAULT '{}'::jsonb,
    request_id TEXT
);

CREATE INDEX idx_audit_events_occurred_at ON audit_events (occurred_at DESC);
CREATE INDEX idx_audit_events_actor_id ON audit_events (actor_id, occurred_at DESC);
CREATE INDEX idx_audit_events_target ON audit_events (target_type, target_id);
CREATE INDEX idx_audit_events_action ON audit_events (action);
CREATE INDEX idx_audit_events_failures ON audit_events (occurred_at DESC) WHERE outcome <> 'success';

-- +goose Down
DROP INDEX IF EXISTS idx_audit_events_failures;
DROP INDEX IF EXISTS idx_audit_events_action;
DROP INDEX IF EXISTS idx_audit_events_target;
DROP INDEX IF EXISTS idx_audit_events_actor_id;
DROP INDEX IF EXISTS idx_audit_events_occurred_at;
DROP TABLE IF EXISTS audit_events;
DROP FUNCTION IF EXISTS ow_set_updated_at();
