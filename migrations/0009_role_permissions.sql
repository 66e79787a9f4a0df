-- Serves: authorization (every API handler checks a permission code; roles bundle permissions).
-- Seeds the permission catalogue and the grants of the four built-in roles.

-- +goose Up
CREATE TABLE permissions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    code TEXT NOT NULL CHECK (code ~ '^[a-z_]+\.[a-z_]+$'),
    description TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_permissions_code UNIQUE (code)
);

CREATE TABLE role_permissions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    role_id UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission_id UUID NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_role_permissions_role_permission UNIQUE (role_id, permission_id)
);

CREATE INDEX idx_role_permissions_permission_id ON role_permissions (permission_id);

INSERT INTO permissions (code, description) VALUES
    ('hosts.read', 'List and view hosts'),
    ('hosts.write', 'Register, edit and decommission hosts'),
    ('credentials.read', 'List credentials (never their secrets)'),
    ('credentials.write', 'Create, rotate and delete credentials'),
    ('scans.read', 'View scan runs and results'),
    ('scans.run', 'Start scans'),
    ('reports.read', 'View and download reports'),
    ('reports.write', 'Generate and schedule reports'),
    ('exceptions.request', 'Request compliance exceptions'),
    ('exceptions.approve', 'Approve or reject compliance exceptions'),
    ('remediation.run', 'Run remediation on hosts'),
    ('alerts.read', 'View alerts'),
    ('alerts.manage', 'Acknowledge, resolve and suppress alerts'),
    ('users.manage', 'Manage users, roles and tokens'),
    ('config.manage', 'Change system configuration'),
    ('audit.read', 'Read the audit trail');

INSERT INTO role_permissions (role_id, permission_id)
SELECT r.id, p.id
FROM roles r
JOIN permissions p ON
    r.name = 'admin'
    OR (r.name = 'operator' AND p.code IN (
        'hosts.read', 'hosts.write', 'credentials.read', 'credentials.write', 'scans.read', 'scans.run',
        'reports.read', 'reports.write', 'exceptions.request', 'remediation.run', 'alerts.read',
        'alerts.manage'))
    OR (r.name = 'auditor' AND p.code IN (
        'hosts.read', 'scans.read', 'reports.read', 'reports.write', 'exceptions.approve',
        'alerts.read', 'audit.read'))
    OR (r.name = 'viewer' AND p.code IN ('hosts.read', 'scans.read', 'reports.read', 'alerts.read'));

-- +goose Down
DROP INDEX IF EXISTS idx_role_permissions_permission_id;
DROP TABLE IF EXISTS role_permissions;
DROP TABLE IF EXISTS permissions;
