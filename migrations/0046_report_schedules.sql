-- Serves: scheduled reports (a schedule generates a report of a given kind and scope on a cron
-- cadence and delivers it to recipients or a notification channel).

-- +goose Up
CREATE TABLE report_schedules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL CHECK (name <> ''),
    kind TEXT NOT NULL
        CHECK (kind IN ('compliance', 'posture', 'executive', 'attestation', 'exception', 'remediation')),
    format TEXT NOT NULL DEFAULT 'pdf' CHECK (format IN ('pdf', 'html', 'csv', 'json')),
    scope TEXT NOT NULL DEFAULT 'fleet' CHECK (scope IN ('fleet', 'group', 'host')),
    scope_group_id UUID REFERENCES host_groups (id) ON DELETE CASCADE,
    scope_host_id UUID REFERENCES hosts (id) ON DELETE CASCADE,
    parameters JSONB NOT NULL DEFAULT '{}'::jsonb,
    cron_expr TEXT NOT NULL CHECK (array_length(regexp_split_to_array(trim(cron_expr), '\s+'), 1) = 5),
    timezone TEXT NOT NULL DEFAULT 'UTC',
    recipients JSONB NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(recipients) = 'array'),
    channel_id UUID REFERENCES notification_channels (id) ON DELETE SET NULL,
    enabled BOOLEAN NOT NULL DEFAULT true,
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    next_run_at TIMESTAMPTZ,
    last_run_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT report_schedules_scope_target_check CHECK (
        (scope = 'fleet' AND scope_group_id IS NULL AND scope_host_id IS NULL)
        OR (scope = 'group' AND scope_group_id IS NOT NULL AND scope_host_id IS NULL)
        OR (scope = 'host' AND scope_host_id IS NOT NULL AND scope_group_id IS NULL)
    )
);

CREATE UNIQUE INDEX uq_report_schedules_name ON report_schedules (lower(name));
CREATE INDEX idx_report_schedules_scope_group_id ON report_schedules (scope_group_id);
CREATE INDEX idx_report_schedules_scope_host_id ON report_schedules (scope_host_id);
CREATE INDEX idx_report_schedules_channel_id ON report_schedules (channel_id);
CREATE INDEX idx_report_schedules_created_by ON report_schedules (created_by);
CREATE INDEX idx_report_schedules_due ON report_schedules (next_run_at) WHERE enabled;

CREATE TRIGGER trg_report_schedules_updated_at
    BEFORE UPDATE ON report_schedules
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

ALTER TABLE reports ADD COLUMN schedule_id UUID REFERENCES report_schedules (id) ON DELETE SET NULL;
CREATE INDEX idx_reports_schedule_id ON reports (schedule_id);

-- +goose Down
DROP INDEX IF EXISTS idx_reports_schedule_id;
ALTER TABLE reports DROP COLUMN IF EXISTS schedule_id;
DROP TRIGGER IF EXISTS trg_report_schedules_updated_at ON report_schedules;
DROP INDEX IF EXISTS idx_report_schedules_due;
DROP INDEX IF EXISTS idx_report_schedules_created_by;
DROP INDEX IF EXISTS idx_report_schedules_channel_id;
DROP INDEX IF EXISTS idx_report_schedules_scope_host_id;
DROP INDEX IF EXISTS idx_report_schedules_scope_group_id;
DROP INDEX IF EXISTS uq_report_schedules_name;
DROP TABLE IF EXISTS report_schedules;
