-- Serves: host liveness (the prober records reachability; the hosts list shows up/down).

-- +goose Up
CREATE TABLE host_liveness (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    state TEXT NOT NULL DEFAULT 'unknown' CHECK (state IN ('up', 'down', 'unknown')),
    last_probe_at TIMESTAMPTZ,
    last_seen_at TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    rtt_ms INTEGER CHECK (rtt_ms IS NULL OR rtt_ms >= 0),
    last_error TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_host_liveness_host UNIQUE (host_id)
);

CREATE INDEX idx_host_liveness_down ON host_liveness (last_seen_at) WHERE state = 'down';

CREATE TRIGGER trg_host_liveness_updated_at
    BEFORE UPDATE ON host_liveness
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

INSERT INTO host_liveness (host_id)
SELECT id FROM hosts;

-- +goose Down
DROP TRIGGER IF EXISTS trg_host_liveness_updated_at ON host_liveness;
DROP INDEX IF EXISTS idx_host_liveness_down;
DROP TABLE IF EXISTS host_liveness;
