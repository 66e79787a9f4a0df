-- Serves: host inventory OS facets (filter hosts by OS family and by distribution).
-- Data fix: hosts.os_family has held the os-release ID ('ubuntu', 'rocky', ...) since 0008.
-- That value moves to a new distro_id column and os_family becomes the real family.
-- Down puts the os-release ID back into os_family and drops distro_id.

-- +goose Up
ALTER TABLE hosts ADD COLUMN distro_id TEXT;

UPDATE hosts SET distro_id = os_family WHERE os_family IS NOT NULL;

UPDATE hosts
SET os_family = CASE
        WHEN lower(distro_id) IN ('rhel', 'centos', 'rocky', 'almalinux', 'ol', 'fedora', 'amzn') THEN 'rhel'
        WHEN lower(distro_id) IN ('debian', 'ubuntu', 'linuxmint', 'raspbian') THEN 'debian'
        WHEN lower(distro_id) IN ('sles', 'sled', 'opensuse', 'opensuse-leap', 'opensuse-tumbleweed') THEN 'suse'
        ELSE 'other'
    END
WHERE distro_id IS NOT NULL;

ALTER TABLE hosts ADD CONSTRAINT hosts_os_family_check
    CHECK (os_family IS NULL OR os_family IN ('rhel', 'debian', 'suse', 'other'));

CREATE INDEX idx_hosts_os_family ON hosts (os_family, distro_id);

-- +goose Down
DROP INDEX IF EXISTS idx_hosts_os_family;
ALTER TABLE hosts DROP CONSTRAINT IF EXISTS hosts_os_family_check;
UPDATE hosts SET os_family = distro_id WHERE distro_id IS NOT NULL;
ALTER TABLE hosts DROP COLUMN IF EXISTS distro_id;
