-- Serves: liveness prober scheduling (the prober claims hosts whose next_probe_at is due, instead
-- of scanning the whole table). Runs outside a transaction so the index is built CONCURRENTLY;
-- every statement is idempotent, so the file can be re-run after a partial failure.
-- +goose NO TRANSACTION

-- +goose Up
ALTER TABLE host_liveness ADD COLUMN IF NOT EXISTS next_probe_at TIMESTAMPTZ;

UPDATE host_liveness SET next_probe_at = coalesce(last_probe_at, updated_at) WHERE next_probe_at IS NULL;

-- An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index behind that IF NOT EXISTS would
-- keep; dropping it first makes a re-run after a partial failure rebuild it.
DROP INDEX CONCURRENTLY IF EXISTS idx_host_liveness_next_probe_at;

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_host_liveness_next_probe_at ON host_liveness (next_probe_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS idx_host_liveness_next_probe_at;

ALTER TABLE host_liveness DROP COLUMN IF EXISTS next_probe_at;
