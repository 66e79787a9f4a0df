-- Serves: notifications (channels API: webhook, Slack and PagerDuty targets; the dispatcher
-- records every delivery attempt of an alert to a channel). Channel secrets are ciphertext only.

-- +goose Up
CREATE TABLE notification_channels (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL CHECK (name <> ''),
    kind TEXT NOT NULL,
    config JSONB NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(config) = 'object'),
    secret_ciphertext BYTEA,
    secret_nonce BYTEA CHECK (secret_nonce IS NULL OR octet_length(secret_nonce) = 12),
    enabled BOOLEAN NOT NULL DEFAULT true,
    min_severity TEXT NOT NULL DEFAULT 'high'
        CHECK (min_severity IN ('info', 'low', 'medium', 'high', 'critical')),
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT notification_channels_kind_check CHECK (kind IN ('webhook', 'slack', 'pagerduty')),
    CONSTRAINT notification_channels_secret_check CHECK ((secret_ciphertext IS NULL) = (secret_nonce IS NULL))
);

CREATE UNIQUE INDEX uq_notification_channels_name ON notification_channels (lower(name));
CREATE INDEX idx_notification_channels_created_by ON notification_channels (created_by);
CREATE INDEX idx_notification_channels_enabled ON notification_channels (kind) WHERE enabled;

CREATE TRIGGER trg_notification_channels_updated_at
    BEFORE UPDATE ON notification_channels
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

CREATE TABLE notification_deliveries (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id UUID NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    alert_id UUID REFERENCES alerts (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    response_code INTEGER,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ
);

CREATE INDEX idx_notification_deliveries_channel_id ON notification_deliveries (channel_id, created_at DESC);
CREATE INDEX idx_notification_deliveries_alert_id ON notification_deliveries (alert_id);
CREATE INDEX idx_notification_deliveries_pending ON notification_deliveries (created_at)
    WHERE status = 'pending';

-- +goose Down
DROP INDEX IF EXISTS idx_notification_deliveries_pending;
DROP INDEX IF EXISTS idx_notification_deliveries_alert_id;
DROP INDEX IF EXISTS idx_notification_deliveries_channel_id;
DROP TABLE IF EXISTS notification_deliveries;
DROP TRIGGER IF EXISTS trg_notification_channels_updated_at ON notification_channels;
DROP INDEX IF EXISTS idx_notification_channels_enabled;
DROP INDEX IF EXISTS idx_notification_channels_created_by;
DROP INDEX IF EXISTS uq_notification_channels_name;
DROP TABLE IF EXISTS notification_channels;
