-- Serves: multi-layer host monitoring (network, SSH, privilege escalation and compliance-engine
-- checks each report their own state; the host health view combines them with liveness).

-- +goose Up
CREATE TABLE host_monitoring (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    layer TEXT NOT NULL CHECK (layer IN ('network', 'ssh', 'privilege', 'engine')),
    state TEXT NOT NULL DEFAULT 'unknown' CHECK (state IN ('ok', 'degraded', 'failed', 'unknown')),
    detail JSONB NOT NULL DEFAULT '{}'::jsonb,
    checked_at TIMESTAMPTZ,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_host_monitoring_host_layer UNIQUE (host_id, layer)
);

CREATE INDEX idx_host_monitoring_problems ON host_monitoring (layer, changed_at)
    WHERE state IN ('degraded', 'failed');

CREATE TRIGGER trg_host_monitoring_updated_at
    BEFORE UPDATE ON host_monitoring
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

-- One row per host and layer; the network layer starts from what liveness already knows.
INSERT INTO host_monitoring (host_id, layer, state, checked_at)
SELECT l.host_id, 'network',
    CASE l.state WHEN 'up' THEN 'ok' WHEN 'down' THEN 'failed' ELSE 'unknown' END,
    l.last_probe_at
FROM host_liveness l;

INSERT INTO host_monitoring (host_id, layer)
SELECT h.id, layer.name
FROM hosts h
CROSS JOIN (VALUES ('ssh'), ('privilege'), ('engine')) AS layer (name);

CREATE VIEW host_health AS
SELECT
    h.id AS host_id,
    h.hostname,
    coalesce(l.state, 'unknown') AS liveness,
    CASE
        WHEN bool_or(m.state = 'failed') THEN 'failed'
        WHEN bool_or(m.state = 'degraded') THEN 'degraded'
        WHEN bool_and(m.state = 'ok') THEN 'ok'
        ELSE 'unknown'
    END AS overall,
    max(m.checked_at) AS last_checked_at
FROM hosts h
LEFT JOIN host_liveness l ON l.host_id = h.id
LEFT JOIN host_monitoring m ON m.host_id = h.id
GROUP BY h.id, h.hostname, l.state;

-- +goose Down
DROP VIEW IF EXISTS host_health;
DROP TRIGGER IF EXISTS trg_host_monitoring_updated_at ON host_monitoring;
DROP INDEX IF EXISTS idx_host_monitoring_problems;
DROP TABLE IF EXISTS host_monitoring;
