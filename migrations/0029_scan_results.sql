-- Serves: per-rule scan results (scan detail page, failing-rules views, evidence for reports).

-- +goose Up
CREATE TABLE scan_results (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    scan_run_id UUID NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    rule_id TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL DEFAULT 'medium' CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    status TEXT NOT NULL CHECK (status IN ('pass', 'fail', 'error', 'skipped', 'not_applicable')),
    message TEXT,
    evidence JSONB NOT NULL DEFAULT '{}'::jsonb,
    duration_ms INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    excepted BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_scan_results_run_rule UNIQUE (scan_run_id, rule_id)
);

CREATE INDEX idx_scan_results_host_rule ON scan_results (host_id, rule_id, created_at DESC);
CREATE INDEX idx_scan_results_failures ON scan_results (rule_id, severity) WHERE status = 'fail';
CREATE INDEX idx_scan_results_created_at ON scan_results (created_at);

-- +goose Down
DROP INDEX IF EXISTS idx_scan_results_created_at;
DROP INDEX IF EXISTS idx_scan_results_failures;
DROP INDEX IF EXISTS idx_scan_results_host_rule;
DROP TABLE IF EXISTS scan_results;
