-- Serves: host connection profiles (how the scanner reaches a host: credential, login user,
-- privilege escalation, bastion, timeouts). Backfilled from hosts.credential_id.

-- +goose Up
CREATE TABLE host_connection_profiles (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    credential_id UUID REFERENCES ssh_credentials (id) ON DELETE SET NULL,
    username TEXT,
    become_method TEXT NOT NULL DEFAULT 'sudo' CHECK (become_method IN ('none', 'sudo', 'su', 'doas')),
    become_credential_id UUID REFERENCES ssh_credentials (id) ON DELETE SET NULL,
    bastion_host_id UUID REFERENCES hosts (id) ON DELETE SET NULL,
    connect_timeout_seconds INTEGER NOT NULL DEFAULT 30 CHECK (connect_timeout_seconds BETWEEN 1 AND 600),
    command_timeout_seconds INTEGER NOT NULL DEFAULT 300 CHECK (command_timeout_seconds BETWEEN 1 AND 7200),
    ssh_options JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(ssh_options) = 'object'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_host_connection_profiles_host UNIQUE (host_id),
    CONSTRAINT host_connection_profiles_bastion_check CHECK (bastion_host_id IS DISTINCT FROM host_id)
);

CREATE INDEX idx_host_connection_profiles_credential_id ON host_connection_profiles (credential_id);
CREATE INDEX idx_host_connection_profiles_become_credential_id
    ON host_connection_profiles (become_credential_id);
CREATE INDEX idx_host_connection_profiles_bastion_host_id ON host_connection_profiles (bastion_host_id);

CREATE TRIGGER trg_host_connection_profiles_updated_at
    BEFORE UPDATE ON host_connection_profiles
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

INSERT INTO host_connection_profiles (host_id, credential_id)
SELECT id, credential_id
FROM hosts
WHERE credential_id IS NOT NULL;

-- +goose Down
DROP TRIGGER IF EXISTS trg_host_connection_profiles_updated_at ON host_connection_profiles;
DROP INDEX IF EXISTS idx_host_connection_profiles_bastion_host_id;
DROP INDEX IF EXISTS idx_host_connection_profiles_become_credential_id;
DROP INDEX IF EXISTS idx_host_connection_profiles_credential_id;
DROP TABLE IF EXISTS host_connection_profiles;
