-- Serves: alert lifecycle (acknowledge, resolve, suppress; every transition is recorded in
-- alert_events for the alert timeline). 'closed' becomes 'resolved'; closed_at keeps recording
-- when an alert left the active states.

-- +goose Up
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_status_check;
UPDATE alerts SET status = 'resolved' WHERE status = 'closed';
ALTER TABLE alerts ADD CONSTRAINT alerts_status_check
    CHECK (status IN ('open', 'acknowledged', 'resolved', 'suppressed'));

ALTER TABLE alerts ADD COLUMN acknowledged_at TIMESTAMPTZ;
ALTER TABLE alerts ADD COLUMN acknowledged_by UUID REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN resolved_by UUID REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN suppressed_until TIMESTAMPTZ;
ALTER TABLE alerts ADD COLUMN resolution_note TEXT;
ALTER TABLE alerts ADD CONSTRAINT alerts_suppression_check
    CHECK (status <> 'suppressed' OR suppressed_until IS NOT NULL);

CREATE INDEX idx_alerts_acknowledged_by ON alerts (acknowledged_by);
CREATE INDEX idx_alerts_resolved_by ON alerts (resolved_by);
CREATE INDEX idx_alerts_suppressed_until ON alerts (suppressed_until) WHERE status = 'suppressed';

-- An acknowledged alert is still active: it keeps absorbing repeats of its fingerprint.
DROP INDEX IF EXISTS uq_alerts_open_fingerprint;
CREATE UNIQUE INDEX uq_alerts_active_fingerprint ON alerts (fingerprint)
    WHERE status IN ('open', 'acknowledged');

CREATE TABLE alert_events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    alert_id UUID NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    from_status TEXT CHECK (from_status IS NULL OR from_status IN ('open', 'acknowledged', 'resolved', 'suppressed')),
    to_status TEXT NOT NULL CHECK (to_status IN ('open', 'acknowledged', 'resolved', 'suppressed')),
    actor_id UUID REFERENCES users (id) ON DELETE SET NULL,
    note TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_alert_events_alert_id ON alert_events (alert_id, created_at);
CREATE INDEX idx_alert_events_actor_id ON alert_events (actor_id);

-- +goose Down
DROP INDEX IF EXISTS idx_alert_events_actor_id;
DROP INDEX IF EXISTS idx_alert_events_alert_id;
DROP TABLE IF EXISTS alert_events;

DROP INDEX IF EXISTS uq_alerts_active_fingerprint;
DROP INDEX IF EXISTS idx_alerts_suppressed_until;
DROP INDEX IF EXISTS idx_alerts_resolved_by;
DROP INDEX IF EXISTS idx_alerts_acknowledged_by;

ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_suppression_check;
ALTER TABLE alerts DROP COLUMN IF EXISTS resolution_note;
ALTER TABLE alerts DROP COLUMN IF EXISTS suppressed_until;
ALTER TABLE alerts DROP COLUMN IF EXISTS resolved_by;
ALTER TABLE alerts DROP COLUMN IF EXISTS acknowledged_by;
ALTER TABLE alerts DROP COLUMN IF EXISTS acknowledged_at;

ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_status_check;
UPDATE alerts SET status = 'open' WHERE status = 'acknowledged';
UPDATE alerts SET status = 'closed' WHERE status IN ('resolved', 'suppressed');
ALTER TABLE alerts ADD CONSTRAINT alerts_status_check CHECK (status IN ('open', 'closed'));
CREATE UNIQUE INDEX IF NOT EXISTS uq_alerts_open_fingerprint ON alerts (fingerprint) WHERE status = 'open';
