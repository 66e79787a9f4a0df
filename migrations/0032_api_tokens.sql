-- Serves: API tokens (personal tokens for automation). Only the SHA-256 of a token is stored; the
-- token is shown once at creation. The prefix lets a user recognise a token in the list.

-- +goose Up
CREATE TABLE api_tokens (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (name <> ''),
    token_prefix TEXT NOT NULL CHECK (token_prefix ~ '^ow_[A-Za-z0-9]{4,12}$'),
    token_hash TEXT NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    scopes JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(scopes) = 'array'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    last_used_ip INET,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    revoked_by UUID REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT uq_api_tokens_token_hash UNIQUE (token_hash),
    CONSTRAINT api_tokens_expiry_check CHECK (expires_at IS NULL OR expires_at > created_at)
);

CREATE INDEX idx_api_tokens_user_id ON api_tokens (user_id);
CREATE INDEX idx_api_tokens_revoked_by ON api_tokens (revoked_by);
CREATE INDEX idx_api_tokens_active_prefix ON api_tokens (token_prefix) WHERE revoked_at IS NULL;

-- +goose Down
DROP INDEX IF EXISTS idx_api_tokens_active_prefix;
DROP INDEX IF EXISTS idx_api_tokens_revoked_by;
DROP INDEX IF EXISTS idx_api_tokens_user_id;
DROP TABLE IF EXISTS api_tokens;
