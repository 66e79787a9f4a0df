-- Serves: background job queue (scan, report and intel workers claim jobs with
-- SELECT ... FOR UPDATE SKIP LOCKED ordered by priority then age).

-- +goose Up
CREATE TABLE job_queue (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    kind TEXT NOT NULL CHECK (kind ~ '^[a-z_]+(\.[a-z_]+)*$'),
    payload JSONB NOT NULL DEFAULT '{}'::jsonb,
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    priority INTEGER NOT NULL DEFAULT 100 CHECK (priority BETWEEN 0 AND 1000),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    dedupe_key TEXT,
    locked_by TEXT,
    locked_at TIMESTAMPTZ,
    last_error TEXT,
    result JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    CONSTRAINT job_queue_lock_check CHECK ((locked_by IS NULL) = (locked_at IS NULL))
);

CREATE INDEX idx_job_queue_claim ON job_queue (priority DESC, created_at) WHERE status = 'queued';
CREATE INDEX idx_job_queue_running ON job_queue (locked_at) WHERE status = 'running';
CREATE INDEX idx_job_queue_kind_status ON job_queue (kind, status);
CREATE UNIQUE INDEX uq_job_queue_dedupe_active ON job_queue (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX idx_job_queue_finished_at ON job_queue (finished_at) WHERE finished_at IS NOT NULL;

CREATE TRIGGER trg_job_queue_updated_at
    BEFORE UPDATE ON job_queue
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

-- +goose Down
DROP TRIGGER IF EXISTS trg_job_queue_updated_at ON job_queue;
DROP INDEX IF EXISTS idx_job_queue_finished_at;
DROP INDEX IF EXISTS uq_job_queue_dedupe_active;
DROP INDEX IF EXISTS idx_job_queue_kind_status;
DROP INDEX IF EXISTS idx_job_queue_running;
DROP INDEX IF EXISTS idx_job_queue_claim;
DROP TABLE IF EXISTS job_queue;
