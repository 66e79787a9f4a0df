-- Serves: delayed jobs and retry back-off in the job queue (a worker only claims a queued job
-- once available_at has passed). Runs outside a transaction so the claim index is built
-- CONCURRENTLY on a busy queue; every statement is idempotent, so the file can be re-run after
-- a partial failure.
-- +goose NO TRANSACTION

-- +goose Up
ALTER TABLE job_queue ADD COLUMN IF NOT EXISTS available_at TIMESTAMPTZ NOT NULL DEFAULT now();

-- An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index behind that IF NOT EXISTS would
-- keep; dropping it first makes a re-run after a partial failure rebuild it.
DROP INDEX CONCURRENTLY IF EXISTS idx_job_queue_available;

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_job_queue_available ON job_queue (available_at, priority DESC)
    WHERE status = 'queued';

DROP INDEX CONCURRENTLY IF EXISTS idx_job_queue_claim;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_job_queue_claim ON job_queue (priority DESC, created_at)
    WHERE status = 'queued';

DROP INDEX CONCURRENTLY IF EXISTS idx_job_queue_available;

ALTER TABLE job_queue DROP COLUMN IF EXISTS available_at;
