-- Serves: compliance scans (scans API: start a scan, follow its progress, list a host's scans).

-- +goose Up
CREATE TABLE scan_runs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    job_id UUID REFERENCES job_queue (id) ON DELETE SET NULL,
    triggered_by UUID REFERENCES users (id) ON DELETE SET NULL,
    trigger_kind TEXT NOT NULL DEFAULT 'manual' CHECK (trigger_kind IN ('manual', 'schedule', 'api', 'remediation')),
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    framework TEXT,
    policy_key TEXT,
    engine_version TEXT,
    rules_total INTEGER NOT NULL DEFAULT 0 CHECK (rules_total >= 0),
    rules_passed INTEGER NOT NULL DEFAULT 0 CHECK (rules_passed >= 0),
    rules_failed INTEGER NOT NULL DEFAULT 0 CHECK (rules_failed >= 0),
    rules_skipped INTEGER NOT NULL DEFAULT 0 CHECK (rules_skipped >= 0),
    rules_errored INTEGER NOT NULL DEFAULT 0 CHECK (rules_errored >= 0),
    score NUMERIC(5, 2) CHECK (score IS NULL OR score BETWEEN 0 AND 100),
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    CONSTRAINT scan_runs_counts_check
        CHECK (rules_passed + rules_failed + rules_skipped + rules_errored <= rules_total)
);

CREATE INDEX idx_scan_runs_host_id ON scan_runs (host_id, created_at DESC);
CREATE INDEX idx_scan_runs_job_id ON scan_runs (job_id);
CREATE INDEX idx_scan_runs_triggered_by ON scan_runs (triggered_by);
CREATE INDEX idx_scan_runs_active ON scan_runs (created_at) WHERE status IN ('queued', 'running');
CREATE INDEX idx_scan_runs_created_at ON scan_runs (created_at DESC);

ALTER TABLE host_compliance_state
    ADD COLUMN last_scan_run_id UUID REFERENCES scan_runs (id) ON DELETE SET NULL;
CREATE INDEX idx_host_compliance_state_last_scan_run ON host_compliance_state (last_scan_run_id);

-- +goose Down
DROP INDEX IF EXISTS idx_host_compliance_state_last_scan_run;
ALTER TABLE host_compliance_state DROP COLUMN IF EXISTS last_scan_run_id;
DROP INDEX IF EXISTS idx_scan_runs_created_at;
DROP INDEX IF EXISTS idx_scan_runs_active;
DROP INDEX IF EXISTS idx_scan_runs_triggered_by;
DROP INDEX IF EXISTS idx_scan_runs_job_id;
DROP INDEX IF EXISTS idx_scan_runs_host_id;
DROP TABLE IF EXISTS scan_runs;
