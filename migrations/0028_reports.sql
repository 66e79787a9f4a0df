-- Serves: reports (reports API: request a compliance, posture or executive report; a worker
-- renders it and stores the file; the UI lists and downloads it).

-- +goose Up
CREATE TABLE reports (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL CHECK (name <> ''),
    kind TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'pdf' CHECK (format IN ('pdf', 'html', 'csv', 'json')),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'generating', 'ready', 'failed')),
    parameters JSONB NOT NULL DEFAULT '{}'::jsonb,
    requested_by UUID REFERENCES users (id) ON DELETE SET NULL,
    job_id UUID REFERENCES job_queue (id) ON DELETE SET NULL,
    storage_path TEXT,
    size_bytes BIGINT CHECK (size_bytes IS NULL OR size_bytes >= 0),
    content_sha256 TEXT CHECK (content_sha256 IS NULL OR content_sha256 ~ '^[0-9a-f]{64}$'),
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    CONSTRAINT reports_kind_check CHECK (kind IN ('compliance', 'posture', 'executive')),
    CONSTRAINT reports_ready_check CHECK (status <> 'ready' OR storage_path IS NOT NULL)
);

CREATE INDEX idx_reports_requested_by ON reports (requested_by, created_at DESC);
CREATE INDEX idx_reports_job_id ON reports (job_id);
CREATE INDEX idx_reports_kind_created_at ON reports (kind, created_at DESC);
CREATE INDEX idx_reports_pending ON reports (created_at) WHERE status IN ('pending', 'generating');
CREATE INDEX idx_reports_expires_at ON reports (expires_at) WHERE expires_at IS NOT NULL;

CREATE TRIGGER trg_reports_updated_at
    BEFORE UPDATE ON reports
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

INSERT INTO system_config (key, value, description) VALUES
    ('reports.storage_dir', '"/var/lib/openwatch/reports"', 'Directory report files are written to'),
    ('reports.retention_days', '90', 'Days a generated report file is kept')
ON CONFLICT (key) DO NOTHING;

-- +goose Down
DELETE FROM system_config WHERE key IN ('reports.storage_dir', 'reports.retention_days');
DROP TRIGGER IF EXISTS trg_reports_updated_at ON reports;
DROP INDEX IF EXISTS idx_reports_expires_at;
DROP INDEX IF EXISTS idx_reports_pending;
DROP INDEX IF EXISTS idx_reports_kind_created_at;
DROP INDEX IF EXISTS idx_reports_job_id;
DROP INDEX IF EXISTS idx_reports_requested_by;
DROP TABLE IF EXISTS reports;
