-- Serves: single sign-on (OIDC and SAML providers; external identities linked to local users,
-- new users get the provider's default role). Client secrets are ciphertext only.

-- +goose Up
CREATE TABLE sso_providers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]*$'),
    display_name TEXT NOT NULL,
    protocol TEXT NOT NULL CHECK (protocol IN ('oidc', 'saml')),
    issuer TEXT NOT NULL,
    client_id TEXT,
    client_secret_ciphertext BYTEA,
    client_secret_nonce BYTEA CHECK (client_secret_nonce IS NULL OR octet_length(client_secret_nonce) = 12),
    metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
    claim_mapping JSONB NOT NULL DEFAULT '{}'::jsonb,
    default_role_id UUID REFERENCES roles (id) ON DELETE SET NULL,
    auto_provision BOOLEAN NOT NULL DEFAULT false,
    enabled BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_sso_providers_name UNIQUE (name),
    CONSTRAINT sso_providers_oidc_check CHECK (protocol <> 'oidc' OR client_id IS NOT NULL),
    CONSTRAINT sso_providers_secret_check
        CHECK ((client_secret_ciphertext IS NULL) = (client_secret_nonce IS NULL))
);

CREATE INDEX idx_sso_providers_default_role_id ON sso_providers (default_role_id);

CREATE TRIGGER trg_sso_providers_updated_at
    BEFORE UPDATE ON sso_providers
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

CREATE TABLE user_identities (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider_id UUID NOT NULL REFERENCES sso_providers (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    email TEXT,
    claims JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at TIMESTAMPTZ,
    CONSTRAINT uq_user_identities_provider_subject UNIQUE (provider_id, subject),
    CONSTRAINT uq_user_identities_user_provider UNIQUE (user_id, provider_id)
);

CREATE INDEX idx_user_identities_email ON user_identities (lower(email)) WHERE email IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS idx_user_identities_email;
DROP TABLE IF EXISTS user_identities;
DROP TRIGGER IF EXISTS trg_sso_providers_updated_at ON sso_providers;
DROP INDEX IF EXISTS idx_sso_providers_default_role_id;
DROP TABLE IF EXISTS sso_providers;
