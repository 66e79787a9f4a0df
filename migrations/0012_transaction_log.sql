-- Serves: host change transactions (every state-changing operation on a host, such as a
-- remediation step, is logged with its pre-state so it can be verified or rolled back).

-- +goose Up
CREATE TABLE transaction_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    job_id UUID REFERENCES job_queue (id) ON DELETE SET NULL,
    initiated_by UUID REFERENCES users (id) ON DELETE SET NULL,
    operation TEXT NOT NULL,
    rule_id TEXT,
    phase TEXT NOT NULL DEFAULT 'planned'
        CHECK (phase IN ('planned', 'applied', 'verified', 'rolled_back', 'failed')),
    pre_state JSONB,
    post_state JSONB,
    error TEXT,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT transaction_log_finish_check CHECK (finished_at IS NULL OR started_at IS NOT NULL)
);

CREATE INDEX idx_transaction_log_host_id ON transaction_log (host_id, created_at DESC);
CREATE INDEX idx_transaction_log_job_id ON transaction_log (job_id);
CREATE INDEX idx_transaction_log_initiated_by ON transaction_log (initiated_by);
CREATE INDEX idx_transaction_log_open ON transaction_log (created_at) WHERE phase IN ('planned', 'applied');
CREATE INDEX idx_transaction_log_rule_id ON transaction_log (rule_id) WHERE rule_id IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS idx_transaction_log_rule_id;
DROP INDEX IF EXISTS idx_transaction_log_open;
DROP INDEX IF EXISTS idx_transaction_log_initiated_by;
DROP INDEX IF EXISTS idx_transaction_log_job_id;
DROP INDEX IF EXISTS idx_transaction_log_host_id;
DROP TABLE IF EXISTS transaction_log;
