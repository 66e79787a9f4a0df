-- Serves: host groups (groups API: static membership or tag criteria; exceptions can target a
-- whole group).

-- +goose Up
CREATE TABLE host_groups (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name TEXT NOT NULL CHECK (name <> ''),
    description TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'static' CHECK (kind IN ('static', 'dynamic')),
    criteria JSONB,
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT host_groups_criteria_check CHECK ((kind = 'dynamic') = (criteria IS NOT NULL))
);

CREATE UNIQUE INDEX uq_host_groups_name ON host_groups (lower(name));
CREATE INDEX idx_host_groups_created_by ON host_groups (created_by);

CREATE TRIGGER trg_host_groups_updated_at
    BEFORE UPDATE ON host_groups
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

CREATE TABLE host_group_members (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    group_id UUID NOT NULL REFERENCES host_groups (id) ON DELETE CASCADE,
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    added_by UUID REFERENCES users (id) ON DELETE SET NULL,
    added_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_host_group_members_group_host UNIQUE (group_id, host_id)
);

CREATE INDEX idx_host_group_members_host_id ON host_group_members (host_id);
CREATE INDEX idx_host_group_members_added_by ON host_group_members (added_by);

ALTER TABLE compliance_exceptions
    ADD COLUMN group_id UUID REFERENCES host_groups (id) ON DELETE CASCADE;
ALTER TABLE compliance_exceptions ADD CONSTRAINT compliance_exceptions_target_check
    CHECK (host_id IS NULL OR group_id IS NULL);
CREATE INDEX idx_compliance_exceptions_group_id ON compliance_exceptions (group_id);

-- +goose Down
DROP INDEX IF EXISTS idx_compliance_exceptions_group_id;
ALTER TABLE compliance_exceptions DROP CONSTRAINT IF EXISTS compliance_exceptions_target_check;
-- Without the column a group-scoped exception would silently widen to every host: remove those.
DELETE FROM compliance_exceptions WHERE group_id IS NOT NULL;
ALTER TABLE compliance_exceptions DROP COLUMN IF EXISTS group_id;
DROP INDEX IF EXISTS idx_host_group_members_added_by;
DROP INDEX IF EXISTS idx_host_group_members_host_id;
DROP TABLE IF EXISTS host_group_members;
DROP TRIGGER IF EXISTS trg_host_groups_updated_at ON host_groups;
DROP INDEX IF EXISTS idx_host_groups_created_by;
DROP INDEX IF EXISTS uq_host_groups_name;
DROP TABLE IF EXISTS host_groups;
