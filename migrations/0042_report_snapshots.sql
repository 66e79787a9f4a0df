-- Serves: report reproducibility (the data a report was rendered from is frozen per host, so a
-- report can be re-rendered or audited later even after newer scans).

-- +goose Up
CREATE TABLE report_snapshots (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    report_id UUID NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    host_id UUID REFERENCES hosts (id) ON DELETE SET NULL,
    hostname TEXT NOT NULL,
    posture_snapshot_id UUID REFERENCES posture_snapshots (id) ON DELETE SET NULL,
    scan_run_id UUID REFERENCES scan_runs (id) ON DELETE SET NULL,
    data JSONB NOT NULL,
    content_sha256 TEXT NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    captured_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_report_snapshots_report_id ON report_snapshots (report_id);
CREATE INDEX idx_report_snapshots_host_id ON report_snapshots (host_id);
CREATE INDEX idx_report_snapshots_posture_snapshot_id ON report_snapshots (posture_snapshot_id);
CREATE INDEX idx_report_snapshots_scan_run_id ON report_snapshots (scan_run_id);

-- +goose Down
DROP INDEX IF EXISTS idx_report_snapshots_scan_run_id;
DROP INDEX IF EXISTS idx_report_snapshots_posture_snapshot_id;
DROP INDEX IF EXISTS idx_report_snapshots_host_id;
DROP INDEX IF EXISTS idx_report_snapshots_report_id;
DROP TABLE IF EXISTS report_snapshots;
