-- Serves: scheduled compliance scanning (scheduler picks due hosts) and the per-host compliance
-- state shown on the hosts list (latest score and band).

-- +goose Up
CREATE TABLE host_compliance_schedules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    enabled BOOLEAN NOT NULL DEFAULT true,
    interval_minutes INTEGER NOT NULL DEFAULT 1440 CHECK (interval_minutes BETWEEN 5 AND 43200),
    framework TEXT,
    next_run_at TIMESTAMPTZ,
    last_run_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_host_compliance_schedules_host UNIQUE (host_id)
);

CREATE INDEX idx_host_compliance_schedules_due ON host_compliance_schedules (next_run_at) WHERE enabled;

CREATE TRIGGER trg_host_compliance_schedules_updated_at
    BEFORE UPDATE ON host_compliance_schedules
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

CREATE TABLE host_compliance_state (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    score NUMERIC(5, 2) CHECK (score IS NULL OR score BETWEEN 0 AND 100),
    band TEXT NOT NULL DEFAULT 'unknown',
    rules_passed INTEGER NOT NULL DEFAULT 0 CHECK (rules_passed >= 0),
    rules_failed INTEGER NOT NULL DEFAULT 0 CHECK (rules_failed >= 0),
    evaluated_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_host_compliance_state_host UNIQUE (host_id),
    CONSTRAINT host_compliance_state_band_check
        CHECK (band IN ('compliant', 'partial', 'non_compliant', 'unknown'))
);

CREATE INDEX idx_host_compliance_state_band ON host_compliance_state (band);

CREATE TRIGGER trg_host_compliance_state_updated_at
    BEFORE UPDATE ON host_compliance_state
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

-- Every existing host gets the default daily schedule.
INSERT INTO host_compliance_schedules (host_id)
SELECT id FROM hosts WHERE status = 'active';

-- +goose Down
DROP TRIGGER IF EXISTS trg_host_compliance_state_updated_at ON host_compliance_state;
DROP INDEX IF EXISTS idx_host_compliance_state_band;
DROP TABLE IF EXISTS host_compliance_state;
DROP TRIGGER IF EXISTS trg_host_compliance_schedules_updated_at ON host_compliance_schedules;
DROP INDEX IF EXISTS idx_host_compliance_schedules_due;
DROP TABLE IF EXISTS host_compliance_schedules;
