-- Serves: authorization. Administrators are now exactly the holders of the admin role, so the
-- is_admin flag from 0005 goes. Down restores the column and recomputes it from the role.

-- +goose Up
-- Make sure no administrator loses the privilege with the flag.
INSERT INTO user_roles (user_id, role_id)
SELECT u.id, r.id
FROM users u
JOIN roles r ON r.name = 'admin'
WHERE u.is_admin
ON CONFLICT (user_id, role_id) DO NOTHING;

ALTER TABLE users DROP COLUMN IF EXISTS is_admin;

-- +goose Down
ALTER TABLE users ADD COLUMN IF NOT EXISTS is_admin BOOLEAN NOT NULL DEFAULT false;

UPDATE users u
SET is_admin = true
WHERE EXISTS (
    SELECT 1
    FROM user_roles ur
    JOIN roles r ON r.id = ur.role_id
    WHERE ur.user_id = u.id AND r.name = 'admin'
);
