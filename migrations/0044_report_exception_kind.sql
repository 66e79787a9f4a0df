-- Serves: exception register reports (every exception in scope with its state at report time,
-- frozen into report_exception_entries). Down removes exception reports.

-- +goose Up
ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_kind_check;
ALTER TABLE reports ADD CONSTRAINT reports_kind_check
    CHECK (kind IN ('compliance', 'posture', 'executive', 'attestation', 'exception'));

CREATE TABLE report_exception_entries (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    report_id UUID NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    exception_id UUID REFERENCES compliance_exceptions (id) ON DELETE SET NULL,
    host_id UUID REFERENCES hosts (id) ON DELETE SET NULL,
    rule_id TEXT NOT NULL,
    status_at_report TEXT NOT NULL
        CHECK (status_at_report IN ('requested', 'approved', 'rejected', 'expired', 'revoked')),
    expires_at TIMESTAMPTZ,
    detail JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_report_exception_entries_report_id ON report_exception_entries (report_id);
CREATE INDEX idx_report_exception_entries_exception_id ON report_exception_entries (exception_id);
CREATE INDEX idx_report_exception_entries_host_id ON report_exception_entries (host_id);

-- +goose Down
DROP INDEX IF EXISTS idx_report_exception_entries_host_id;
DROP INDEX IF EXISTS idx_report_exception_entries_exception_id;
DROP INDEX IF EXISTS idx_report_exception_entries_report_id;
DROP TABLE IF EXISTS report_exception_entries;
DELETE FROM reports WHERE kind = 'exception';
ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_kind_check;
ALTER TABLE reports ADD CONSTRAINT reports_kind_check
    CHECK (kind IN ('compliance', 'posture', 'executive', 'attestation'));
