-- Serves: remediation reports (what was fixed where, by whom, with the verification outcome,
-- frozen into report_remediation_entries). Down removes remediation reports.

-- +goose Up
ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_kind_check;
ALTER TABLE reports ADD CONSTRAINT reports_kind_check
    CHECK (kind IN ('compliance', 'posture', 'executive', 'attestation', 'exception', 'remediation'));

CREATE TABLE report_remediation_entries (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    report_id UUID NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    remediation_id UUID REFERENCES remediation_jobs (id) ON DELETE SET NULL,
    host_id UUID REFERENCES hosts (id) ON DELETE SET NULL,
    rule_id TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'rolled_back', 'rejected', 'pending')),
    verified BOOLEAN,
    detail JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_report_remediation_entries_report_id ON report_remediation_entries (report_id);
CREATE INDEX idx_report_remediation_entries_remediation_id ON report_remediation_entries (remediation_id);
CREATE INDEX idx_report_remediation_entries_host_id ON report_remediation_entries (host_id);

-- +goose Down
DROP INDEX IF EXISTS idx_report_remediation_entries_host_id;
DROP INDEX IF EXISTS idx_report_remediation_entries_remediation_id;
DROP INDEX IF EXISTS idx_report_remediation_entries_report_id;
DROP TABLE IF EXISTS report_remediation_entries;
DELETE FROM reports WHERE kind = 'remediation';
ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_kind_check;
ALTER TABLE reports ADD CONSTRAINT reports_kind_check
    CHECK (kind IN ('compliance', 'posture', 'executive', 'attestation', 'exception'));
