-- Serves: user preferences (profile page: theme, time zone, locale, table page size, dashboard
-- layout, notification opt-ins). One row per user, created for existing users here.

-- +goose Up
CREATE TABLE user_preferences (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    theme TEXT NOT NULL DEFAULT 'system' CHECK (theme IN ('system', 'light', 'dark')),
    timezone TEXT NOT NULL DEFAULT 'UTC',
    locale TEXT NOT NULL DEFAULT 'en' CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    page_size INTEGER NOT NULL DEFAULT 50 CHECK (page_size IN (10, 25, 50, 100, 200)),
    dashboard JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(dashboard) = 'object'),
    email_alerts BOOLEAN NOT NULL DEFAULT true,
    email_reports BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_user_preferences_user UNIQUE (user_id)
);

CREATE TRIGGER trg_user_preferences_updated_at
    BEFORE UPDATE ON user_preferences
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

INSERT INTO user_preferences (user_id)
SELECT id FROM users;

-- +goose Down
DROP TRIGGER IF EXISTS trg_user_preferences_updated_at ON user_preferences;
DROP TABLE IF EXISTS user_preferences;
