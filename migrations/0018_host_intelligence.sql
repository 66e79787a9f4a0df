-- Serves: host intelligence (facts gathered from hosts: packages, services, listening ports,
-- local users, firewall; used by drift detection and the host detail page).

-- +goose Up
CREATE TABLE host_intelligence (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    kind TEXT NOT NULL
        CHECK (kind IN ('packages', 'services', 'ports', 'users', 'firewall', 'mounts', 'audit_rules')),
    data JSONB NOT NULL,
    content_sha256 TEXT NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    collected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_host_intelligence_host_kind UNIQUE (host_id, kind)
);

CREATE INDEX idx_host_intelligence_kind ON host_intelligence (kind, collected_at);

CREATE TABLE host_packages (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    architecture TEXT,
    source TEXT NOT NULL DEFAULT 'rpm' CHECK (source IN ('rpm', 'dpkg', 'other')),
    collected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_host_packages_host_name_arch UNIQUE (host_id, name, architecture)
);

CREATE INDEX idx_host_packages_name ON host_packages (name, version);

-- +goose Down
DROP INDEX IF EXISTS idx_host_packages_name;
DROP TABLE IF EXISTS host_packages;
DROP INDEX IF EXISTS idx_host_intelligence_kind;
DROP TABLE IF EXISTS host_intelligence;
