-- Serves: intelligence collection scheduler (each host and fact kind is collected on its own cadence).

-- +goose Up
CREATE TABLE intel_schedules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL
        CHECK (kind IN ('packages', 'services', 'ports', 'users', 'firewall', 'mounts', 'audit_rules')),
    enabled BOOLEAN NOT NULL DEFAULT true,
    interval_minutes INTEGER NOT NULL DEFAULT 360 CHECK (interval_minutes BETWEEN 5 AND 10080),
    next_run_at TIMESTAMPTZ,
    last_run_at TIMESTAMPTZ,
    last_status TEXT CHECK (last_status IS NULL OR last_status IN ('ok', 'failed', 'skipped')),
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_intel_schedules_host_kind UNIQUE (host_id, kind)
);

CREATE INDEX idx_intel_schedules_due ON intel_schedules (next_run_at) WHERE enabled;

CREATE TRIGGER trg_intel_schedules_updated_at
    BEFORE UPDATE ON intel_schedules
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

INSERT INTO system_config (key, value, description) VALUES
    ('intel.enabled', 'true', 'Collect host intelligence on a schedule'),
    ('intel.default_interval_minutes', '360', 'Default interval between intelligence collections'),
    ('intel.max_concurrent', '4', 'Intelligence collections running at the same time')
ON CONFLICT (key) DO NOTHING;

-- +goose Down
DELETE FROM system_config
WHERE key IN ('intel.enabled', 'intel.default_interval_minutes', 'intel.max_concurrent');
DROP TRIGGER IF EXISTS trg_intel_schedules_updated_at ON intel_schedules;
DROP INDEX IF EXISTS idx_intel_schedules_due;
DROP TABLE IF EXISTS intel_schedules;
