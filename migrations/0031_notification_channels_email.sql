-- Serves: email notifications (channels API gains the 'email' kind with its recipient list; the
-- SMTP relay settings are seeded into system_config). Down removes email channels, which the
-- old kind constraint cannot hold.

-- +goose Up
ALTER TABLE notification_channels DROP CONSTRAINT IF EXISTS notification_channels_kind_check;
ALTER TABLE notification_channels ADD CONSTRAINT notification_channels_kind_check
    CHECK (kind IN ('webhook', 'slack', 'pagerduty', 'email'));

ALTER TABLE notification_channels ADD COLUMN email_recipients JSONB;
ALTER TABLE notification_channels ADD CONSTRAINT notification_channels_email_check
    CHECK (
        (kind = 'email' AND jsonb_typeof(email_recipients) = 'array' AND jsonb_array_length(email_recipients) > 0)
        OR (kind <> 'email' AND email_recipients IS NULL)
    );

INSERT INTO system_config (key, value, description, is_secret) VALUES
    ('smtp.host', '""', 'SMTP relay host name', false),
    ('smtp.port', '587', 'SMTP relay port', false),
    ('smtp.starttls', 'true', 'Require STARTTLS with the relay', false),
    ('smtp.from_address', '"openwatch@localhost"', 'Envelope and header sender', false),
    ('smtp.username', '""', 'SMTP AUTH user (empty: no authentication)', false)
ON CONFLICT (key) DO NOTHING;

-- +goose Down
DELETE FROM system_config
WHERE key IN ('smtp.host', 'smtp.port', 'smtp.starttls', 'smtp.from_address', 'smtp.username');
DELETE FROM notification_channels WHERE kind = 'email';
ALTER TABLE notification_channels DROP CONSTRAINT IF EXISTS notification_channels_email_check;
ALTER TABLE notification_channels DROP COLUMN IF EXISTS email_recipients;
ALTER TABLE notification_channels DROP CONSTRAINT IF EXISTS notification_channels_kind_check;
ALTER TABLE notification_channels ADD CONSTRAINT notification_channels_kind_check
    CHECK (kind IN ('webhook', 'slack', 'pagerduty'));
