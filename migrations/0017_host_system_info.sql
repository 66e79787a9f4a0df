-- Serves: host system information (collected over SSH after each successful connection and shown
-- on the host detail page: OS release, kernel, hardware).

-- +goose Up
CREATE TABLE host_system_info (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    os_release_id TEXT,
    os_release_id_like TEXT,
    os_version_id TEXT,
    os_pretty_name TEXT,
    kernel_release TEXT,
    architecture TEXT,
    cpu_count INTEGER CHECK (cpu_count IS NULL OR cpu_count > 0),
    memory_bytes BIGINT CHECK (memory_bytes IS NULL OR memory_bytes > 0),
    boot_time TIMESTAMPTZ,
    fips_enabled BOOLEAN,
    selinux_mode TEXT CHECK (selinux_mode IS NULL OR selinux_mode IN ('enforcing', 'permissive', 'disabled')),
    raw JSONB NOT NULL DEFAULT '{}'::jsonb,
    collected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_host_system_info_host UNIQUE (host_id)
);

CREATE INDEX idx_host_system_info_os ON host_system_info (os_release_id, os_version_id);
CREATE INDEX idx_host_system_info_kernel ON host_system_info (kernel_release);

-- +goose Down
DROP INDEX IF EXISTS idx_host_system_info_kernel;
DROP INDEX IF EXISTS idx_host_system_info_os;
DROP TABLE IF EXISTS host_system_info;
