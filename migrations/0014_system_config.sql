-- Serves: system configuration (settings API; defaults seeded here, edited by admins).

-- +goose Up
CREATE TABLE system_config (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    key TEXT NOT NULL CHECK (key ~ '^[a-z_]+(\.[a-z_]+)+$'),
    value JSONB NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    is_secret BOOLEAN NOT NULL DEFAULT false,
    updated_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_system_config_key UNIQUE (key)
);

CREATE INDEX idx_system_config_updated_by ON system_config (updated_by);

CREATE TRIGGER trg_system_config_updated_at
    BEFORE UPDATE ON system_config
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

INSERT INTO system_config (key, value, description) VALUES
    ('scan.default_interval_minutes', '1440', 'Default interval between scheduled scans of a host'),
    ('scan.max_concurrent', '8', 'Scans running at the same time'),
    ('ssh.connect_timeout_seconds', '30', 'TCP and SSH handshake timeout'),
    ('ssh.strict_host_key_checking', 'true', 'Refuse hosts whose key is not trusted'),
    ('liveness.probe_interval_seconds', '300', 'Interval between liveness probes of a host'),
    ('liveness.down_after_failures', '3', 'Consecutive failed probes before a host is down'),
    ('retention.audit_days', '365', 'Days audit events are kept'),
    ('retention.scan_results_days', '180', 'Days per-rule scan results are kept'),
    ('retention.jobs_days', '30', 'Days finished jobs are kept'),
    ('ui.session_banner', '""', 'Text shown on the login page');

-- +goose Down
DROP TRIGGER IF EXISTS trg_system_config_updated_at ON system_config;
DROP INDEX IF EXISTS idx_system_config_updated_by;
DROP TABLE IF EXISTS system_config;
