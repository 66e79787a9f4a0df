-- Serves: authentication policy (password rules, MFA requirement, session limits and account
-- lockout; a single row edited on the security settings page) and per-user lockout counters.

-- +goose Up
CREATE TABLE auth_policy (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    singleton BOOLEAN NOT NULL DEFAULT true CHECK (singleton),
    password_min_length INTEGER NOT NULL DEFAULT 12 CHECK (password_min_length BETWEEN 8 AND 128),
    password_require_classes INTEGER NOT NULL DEFAULT 3 CHECK (password_require_classes BETWEEN 0 AND 4),
    password_max_age_days INTEGER CHECK (password_max_age_days IS NULL OR password_max_age_days > 0),
    require_mfa BOOLEAN NOT NULL DEFAULT false,
    session_idle_minutes INTEGER NOT NULL DEFAULT 30 CHECK (session_idle_minutes BETWEEN 1 AND 1440),
    session_max_hours INTEGER NOT NULL DEFAULT 12 CHECK (session_max_hours BETWEEN 1 AND 720),
    lockout_threshold INTEGER NOT NULL DEFAULT 5 CHECK (lockout_threshold BETWEEN 0 AND 100),
    lockout_minutes INTEGER NOT NULL DEFAULT 15 CHECK (lockout_minutes BETWEEN 1 AND 1440),
    updated_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_auth_policy_singleton UNIQUE (singleton)
);

CREATE INDEX idx_auth_policy_updated_by ON auth_policy (updated_by);

CREATE TRIGGER trg_auth_policy_updated_at
    BEFORE UPDATE ON auth_policy
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

INSERT INTO auth_policy DEFAULT VALUES;

ALTER TABLE users ADD COLUMN failed_login_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD CONSTRAINT users_failed_login_count_check CHECK (failed_login_count >= 0);
ALTER TABLE users ADD COLUMN locked_until TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN password_changed_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN mfa_secret_ciphertext BYTEA;
CREATE INDEX idx_users_locked_until ON users (locked_until) WHERE locked_until IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS idx_users_locked_until;
ALTER TABLE users DROP COLUMN IF EXISTS mfa_secret_ciphertext;
ALTER TABLE users DROP COLUMN IF EXISTS password_changed_at;
ALTER TABLE users DROP COLUMN IF EXISTS locked_until;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_failed_login_count_check;
ALTER TABLE users DROP COLUMN IF EXISTS failed_login_count;
DROP TRIGGER IF EXISTS trg_auth_policy_updated_at ON auth_policy;
DROP INDEX IF EXISTS idx_auth_policy_updated_by;
DROP TABLE IF EXISTS auth_policy;
