-- Serves: disabling accounts (users API: an admin disables a user without deleting the history;
-- a disabled user cannot log in and their sessions and tokens stop working).

-- +goose Up
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN disabled_by UUID REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE users ADD COLUMN disabled_reason TEXT;
ALTER TABLE users ADD CONSTRAINT users_disabled_check
    CHECK (disabled_at IS NOT NULL OR (disabled_by IS NULL AND disabled_reason IS NULL));

CREATE INDEX idx_users_disabled_by ON users (disabled_by);
CREATE INDEX idx_users_enabled_last_login ON users (last_login_at) WHERE disabled_at IS NULL;

-- +goose Down
DROP INDEX IF EXISTS idx_users_enabled_last_login;
DROP INDEX IF EXISTS idx_users_disabled_by;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_disabled_check;
ALTER TABLE users DROP COLUMN IF EXISTS disabled_reason;
ALTER TABLE users DROP COLUMN IF EXISTS disabled_by;
ALTER TABLE users DROP COLUMN IF EXISTS disabled_at;
