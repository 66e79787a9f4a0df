-- Serves: compliance posture over time (daily per-host snapshots feed the trend charts; the
-- host_posture_latest view gives each host's most recent snapshot).

-- +goose Up
CREATE TABLE posture_snapshots (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    scan_run_id UUID REFERENCES scan_runs (id) ON DELETE SET NULL,
    snapshot_date DATE NOT NULL,
    score NUMERIC(5, 2) CHECK (score IS NULL OR score BETWEEN 0 AND 100),
    band TEXT NOT NULL DEFAULT 'unknown'
        CHECK (band IN ('compliant', 'minor', 'moderate', 'major', 'critical', 'unknown')),
    rules_passed INTEGER NOT NULL DEFAULT 0 CHECK (rules_passed >= 0),
    rules_failed INTEGER NOT NULL DEFAULT 0 CHECK (rules_failed >= 0),
    rules_excepted INTEGER NOT NULL DEFAULT 0 CHECK (rules_excepted >= 0),
    by_severity JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_posture_snapshots_host_date UNIQUE (host_id, snapshot_date)
);

CREATE INDEX idx_posture_snapshots_scan_run_id ON posture_snapshots (scan_run_id);
CREATE INDEX idx_posture_snapshots_date ON posture_snapshots (snapshot_date);

-- Seed today's snapshot from the current compliance state of every scored host.
INSERT INTO posture_snapshots (host_id, scan_run_id, snapshot_date, score, band, rules_passed, rules_failed)
SELECT host_id, last_scan_run_id, CURRENT_DATE, score, band, rules_passed, rules_failed
FROM host_compliance_state
WHERE evaluated_at IS NOT NULL;

CREATE VIEW host_posture_latest AS
SELECT DISTINCT ON (ps.host_id)
    ps.host_id,
    h.hostname,
    ps.snapshot_date,
    ps.score,
    ps.band,
    ps.rules_passed,
    ps.rules_failed,
    ps.rules_excepted
FROM posture_snapshots ps
JOIN hosts h ON h.id = ps.host_id
ORDER BY ps.host_id, ps.snapshot_date DESC;

-- +goose Down
DROP VIEW IF EXISTS host_posture_latest;
DROP INDEX IF EXISTS idx_posture_snapshots_date;
DROP INDEX IF EXISTS idx_posture_snapshots_scan_run_id;
DROP TABLE IF EXISTS posture_snapshots;
