-- Serves: remediation (fix a failing rule on a host: request, optional approval, run as a job,
-- each change recorded in transaction_log, then a verification scan).

-- +goose Up
CREATE TABLE remediation_jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    rule_id TEXT NOT NULL,
    scan_result_id UUID REFERENCES scan_results (id) ON DELETE SET NULL,
    job_id UUID REFERENCES job_queue (id) ON DELETE SET NULL,
    verification_scan_run_id UUID REFERENCES scan_runs (id) ON DELETE SET NULL,
    status TEXT NOT NULL DEFAULT 'pending_approval' CHECK (status IN (
        'pending_approval', 'approved', 'rejected', 'running', 'succeeded', 'failed', 'rolled_back')),
    dry_run BOOLEAN NOT NULL DEFAULT false,
    requested_by UUID REFERENCES users (id) ON DELETE SET NULL,
    approved_by UUID REFERENCES users (id) ON DELETE SET NULL,
    output JSONB NOT NULL DEFAULT '{}'::jsonb,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);

CREATE INDEX idx_remediation_jobs_host_id ON remediation_jobs (host_id, created_at DESC);
CREATE INDEX idx_remediation_jobs_scan_result_id ON remediation_jobs (scan_result_id);
CREATE INDEX idx_remediation_jobs_job_id ON remediation_jobs (job_id);
CREATE INDEX idx_remediation_jobs_verification_scan_run_id ON remediation_jobs (verification_scan_run_id);
CREATE INDEX idx_remediation_jobs_requested_by ON remediation_jobs (requested_by);
CREATE INDEX idx_remediation_jobs_approved_by ON remediation_jobs (approved_by);
CREATE INDEX idx_remediation_jobs_rule_id ON remediation_jobs (rule_id);
CREATE INDEX idx_remediation_jobs_pending ON remediation_jobs (created_at) WHERE status = 'pending_approval';

CREATE TRIGGER trg_remediation_jobs_updated_at
    BEFORE UPDATE ON remediation_jobs
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

ALTER TABLE transaction_log
    ADD COLUMN remediation_id UUID REFERENCES remediation_jobs (id) ON DELETE SET NULL;
CREATE INDEX idx_transaction_log_remediation_id ON transaction_log (remediation_id);

INSERT INTO system_config (key, value, description) VALUES
    ('remediation.require_approval', 'true', 'Remediation waits for approval by a second user'),
    ('remediation.verify_after', 'true', 'Run a verification scan after remediation')
ON CONFLICT (key) DO NOTHING;

-- +goose Down
DELETE FROM system_config WHERE key IN ('remediation.require_approval', 'remediation.verify_after');
DROP INDEX IF EXISTS idx_transaction_log_remediation_id;
ALTER TABLE transaction_log DROP COLUMN IF EXISTS remediation_id;
DROP TRIGGER IF EXISTS trg_remediation_jobs_updated_at ON remediation_jobs;
DROP INDEX IF EXISTS idx_remediation_jobs_pending;
DROP INDEX IF EXISTS idx_remediation_jobs_rule_id;
DROP INDEX IF EXISTS idx_remediation_jobs_approved_by;
DROP INDEX IF EXISTS idx_remediation_jobs_requested_by;
DROP INDEX IF EXISTS idx_remediation_jobs_verification_scan_run_id;
DROP INDEX IF EXISTS idx_remediation_jobs_job_id;
DROP INDEX IF EXISTS idx_remediation_jobs_scan_result_id;
DROP INDEX IF EXISTS idx_remediation_jobs_host_id;
DROP TABLE IF EXISTS remediation_jobs;
