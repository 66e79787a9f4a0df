-- Serves: SSH credential vault (credentials API). Secrets are stored only as AEAD ciphertext
-- produced by the application with a key-encryption key that never enters the database;
-- the CHECK constraints refuse anything that looks like a plaintext key or password.

-- +goose Up
CREATE TABLE ssh_credentials (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    username TEXT NOT NULL CHECK (username <> ''),
    auth_method TEXT NOT NULL CHECK (auth_method IN ('password', 'private_key', 'private_key_passphrase')),
    -- AES-256-GCM ciphertext (with tag) and its 96-bit nonce; kek_id names the wrapping key.
    secret_ciphertext BYTEA NOT NULL CHECK (octet_length(secret_ciphertext) >= 17),
    secret_nonce BYTEA NOT NULL CHECK (octet_length(secret_nonce) = 12),
    kek_id TEXT NOT NULL,
    public_key_fingerprint TEXT CHECK (public_key_fingerprint IS NULL OR public_key_fingerprint ~ '^SHA256:'),
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    rotated_at TIMESTAMPTZ,
    CONSTRAINT ssh_credentials_not_plaintext_check
        CHECK (position('\x2d2d2d2d2d424547494e'::bytea IN secret_ciphertext) = 0)
);

CREATE UNIQUE INDEX uq_ssh_credentials_name ON ssh_credentials (lower(name));
CREATE INDEX idx_ssh_credentials_created_by ON ssh_credentials (created_by);
CREATE INDEX idx_ssh_credentials_kek_id ON ssh_credentials (kek_id);

CREATE TRIGGER trg_ssh_credentials_updated_at
    BEFORE UPDATE ON ssh_credentials
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

-- +goose Down
DROP TRIGGER IF EXISTS trg_ssh_credentials_updated_at ON ssh_credentials;
DROP INDEX IF EXISTS idx_ssh_credentials_kek_id;
DROP INDEX IF EXISTS idx_ssh_credentials_created_by;
DROP INDEX IF EXISTS uq_ssh_credentials_name;
DROP TABLE IF EXISTS ssh_credentials;
