-- Serves: host inventory (hosts API: register, list, search, decommission).
-- Contract relied on by the HTTPS API: INSERT INTO hosts (hostname, address, port) works with
-- every other column defaulted or nullable; hostnames are unique case-insensitively.

-- +goose Up
CREATE TABLE hosts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    hostname TEXT NOT NULL CHECK (hostname <> '' AND length(hostname) <= 253),
    address TEXT NOT NULL CHECK (address <> ''),
    port INTEGER NOT NULL DEFAULT 22 CHECK (port BETWEEN 1 AND 65535),
    display_name TEXT,
    description TEXT NOT NULL DEFAULT '',
    -- As first collected: the os-release ID (0022 splits it into os_family and distro_id).
    os_family TEXT,
    os_version TEXT,
    environment TEXT NOT NULL DEFAULT 'production'
        CHECK (environment IN ('production', 'staging', 'development', 'test')),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'maintenance', 'decommissioned')),
    credential_id UUID REFERENCES ssh_credentials (id) ON DELETE SET NULL,
    tags JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(tags) = 'array'),
    labels JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    decommissioned_at TIMESTAMPTZ
);

CREATE UNIQUE INDEX uq_hosts_hostname ON hosts (lower(hostname));
CREATE INDEX idx_hosts_address ON hosts (address);
CREATE INDEX idx_hosts_credential_id ON hosts (credential_id);
CREATE INDEX idx_hosts_created_by ON hosts (created_by);
CREATE INDEX idx_hosts_status ON hosts (status) WHERE status <> 'decommissioned';
CREATE INDEX idx_hosts_tags ON hosts USING gin (tags);
CREATE INDEX idx_hosts_created_at ON hosts (created_at DESC);

CREATE TRIGGER trg_hosts_updated_at
    BEFORE UPDATE ON hosts
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

-- +goose Down
DROP TRIGGER IF EXISTS trg_hosts_updated_at ON hosts;
DROP INDEX IF EXISTS idx_hosts_created_at;
DROP INDEX IF EXISTS idx_hosts_tags;
DROP INDEX IF EXISTS idx_hosts_status;
DROP INDEX IF EXISTS idx_hosts_created_by;
DROP INDEX IF EXISTS idx_hosts_credential_id;
DROP INDEX IF EXISTS idx_hosts_address;
DROP INDEX IF EXISTS uq_hosts_hostname;
DROP TABLE IF EXISTS hosts;
