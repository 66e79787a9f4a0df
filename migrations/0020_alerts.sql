-- Serves: alerting (alerts API and dashboard: compliance drops, hosts down, failed scans).
-- An open alert is deduplicated by its fingerprint.

-- +goose Up
CREATE TABLE alerts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID REFERENCES hosts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL
        CHECK (kind IN ('compliance_drop', 'host_down', 'scan_failed', 'drift', 'credential_failure')),
    severity TEXT NOT NULL DEFAULT 'medium' CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    title TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    details JSONB NOT NULL DEFAULT '{}'::jsonb,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    occurrences INTEGER NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at TIMESTAMPTZ,
    CONSTRAINT alerts_status_check CHECK (status IN ('open', 'closed'))
);

CREATE INDEX idx_alerts_host_id ON alerts (host_id, created_at DESC);
CREATE INDEX idx_alerts_status_severity ON alerts (status, severity);
CREATE INDEX idx_alerts_created_at ON alerts (created_at DESC);
CREATE UNIQUE INDEX uq_alerts_open_fingerprint ON alerts (fingerprint) WHERE status = 'open';

CREATE TRIGGER trg_alerts_updated_at
    BEFORE UPDATE ON alerts
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

-- +goose Down
DROP TRIGGER IF EXISTS trg_alerts_updated_at ON alerts;
DROP INDEX IF EXISTS uq_alerts_open_fingerprint;
DROP INDEX IF EXISTS idx_alerts_created_at;
DROP INDEX IF EXISTS idx_alerts_status_severity;
DROP INDEX IF EXISTS idx_alerts_host_id;
DROP TABLE IF EXISTS alerts;
