-- Serves: report scope (a report covers the whole fleet, one host group or one host). Backfilled
-- from the group_id / host_id that earlier report requests carried in their parameters.

-- +goose Up
ALTER TABLE reports ADD COLUMN scope TEXT NOT NULL DEFAULT 'fleet';
ALTER TABLE reports ADD COLUMN scope_group_id UUID REFERENCES host_groups (id) ON DELETE SET NULL;
ALTER TABLE reports ADD COLUMN scope_host_id UUID REFERENCES hosts (id) ON DELETE SET NULL;

UPDATE reports r
SET scope = 'group', scope_group_id = g.id
FROM host_groups g
WHERE g.id::text = lower(r.parameters ->> 'group_id');

UPDATE reports r
SET scope = 'host', scope_host_id = h.id
FROM hosts h
WHERE r.scope = 'fleet' AND h.id::text = lower(r.parameters ->> 'host_id');

-- A scope target may later be deleted (ON DELETE SET NULL): the report keeps its scope kind.
ALTER TABLE reports ADD CONSTRAINT reports_scope_check CHECK (
    (scope = 'fleet' AND scope_group_id IS NULL AND scope_host_id IS NULL)
    OR (scope = 'group' AND scope_host_id IS NULL)
    OR (scope = 'host' AND scope_group_id IS NULL)
);

CREATE INDEX idx_reports_scope_group_id ON reports (scope_group_id);
CREATE INDEX idx_reports_scope_host_id ON reports (scope_host_id);

-- +goose Down
DROP INDEX IF EXISTS idx_reports_scope_host_id;
DROP INDEX IF EXISTS idx_reports_scope_group_id;
ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_scope_check;
ALTER TABLE reports DROP COLUMN IF EXISTS scope_host_id;
ALTER TABLE reports DROP COLUMN IF EXISTS scope_group_id;
ALTER TABLE reports DROP COLUMN IF EXISTS scope;
