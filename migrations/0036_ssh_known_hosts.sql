-- Serves: SSH host key verification (trust on first use with approval: the scanner records each
-- key a host presents; an admin approves it; a changed key blocks scanning and raises an alert).

-- +goose Up
CREATE TABLE ssh_known_hosts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    key_type TEXT NOT NULL CHECK (key_type IN (
        'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
        'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa')),
    public_key TEXT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL CHECK (fingerprint_sha256 ~ '^SHA256:[A-Za-z0-9+/]{43}$'),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'trusted', 'revoked')),
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    approved_by UUID REFERENCES users (id) ON DELETE SET NULL,
    approved_at TIMESTAMPTZ,
    CONSTRAINT ssh_known_hosts_approval_check CHECK (status <> 'trusted' OR approved_at IS NOT NULL)
);

CREATE UNIQUE INDEX uq_ssh_known_hosts_current ON ssh_known_hosts (host_id, key_type)
    WHERE status IN ('pending', 'trusted');
CREATE INDEX idx_ssh_known_hosts_host_id ON ssh_known_hosts (host_id);
CREATE INDEX idx_ssh_known_hosts_fingerprint ON ssh_known_hosts (fingerprint_sha256);
CREATE INDEX idx_ssh_known_hosts_approved_by ON ssh_known_hosts (approved_by);
CREATE INDEX idx_ssh_known_hosts_pending ON ssh_known_hosts (first_seen_at) WHERE status = 'pending';

-- +goose Down
DROP INDEX IF EXISTS idx_ssh_known_hosts_pending;
DROP INDEX IF EXISTS idx_ssh_known_hosts_approved_by;
DROP INDEX IF EXISTS idx_ssh_known_hosts_fingerprint;
DROP INDEX IF EXISTS idx_ssh_known_hosts_host_id;
DROP INDEX IF EXISTS uq_ssh_known_hosts_current;
DROP TABLE IF EXISTS ssh_known_hosts;
