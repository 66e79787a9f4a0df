-- Serves: compliance policy versioning (policy API keeps every revision of a policy document;
-- the active revision is the one scans are evaluated against).

-- +goose Up
CREATE TABLE policy_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    policy_key TEXT NOT NULL CHECK (policy_key ~ '^[a-z0-9][a-z0-9_.-]*$'),
    revision INTEGER NOT NULL CHECK (revision >= 1),
    title TEXT NOT NULL,
    framework TEXT,
    document JSONB NOT NULL,
    document_sha256 TEXT NOT NULL CHECK (document_sha256 ~ '^[0-9a-f]{64}$'),
    is_active BOOLEAN NOT NULL DEFAULT false,
    change_note TEXT,
    changed_by TEXT NOT NULL DEFAULT 'system',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT uq_policy_history_revision UNIQUE (policy_key, revision)
);

CREATE UNIQUE INDEX uq_policy_history_active ON policy_history (policy_key) WHERE is_active;
CREATE INDEX idx_policy_history_framework ON policy_history (framework) WHERE framework IS NOT NULL;
CREATE INDEX idx_policy_history_created_at ON policy_history (created_at DESC);

-- +goose Down
DROP INDEX IF EXISTS idx_policy_history_created_at;
DROP INDEX IF EXISTS idx_policy_history_framework;
DROP INDEX IF EXISTS uq_policy_history_active;
DROP TABLE IF EXISTS policy_history;
