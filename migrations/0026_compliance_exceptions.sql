-- Serves: compliance exceptions (request, approve or reject, expire; an approved exception
-- excludes a failing rule on a host from its score until it expires).

-- +goose Up
CREATE TABLE compliance_exceptions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id UUID REFERENCES hosts (id) ON DELETE CASCADE,
    rule_id TEXT NOT NULL,
    justification TEXT NOT NULL CHECK (length(justification) >= 10),
    compensating_controls TEXT,
    status TEXT NOT NULL DEFAULT 'requested'
        CHECK (status IN ('requested', 'approved', 'rejected', 'expired', 'revoked')),
    requested_by UUID REFERENCES users (id) ON DELETE SET NULL,
    decided_by UUID REFERENCES users (id) ON DELETE SET NULL,
    decision_note TEXT,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT compliance_exceptions_decision_check
        CHECK (status IN ('requested', 'expired') OR decided_at IS NOT NULL),
    CONSTRAINT compliance_exceptions_expiry_check
        CHECK (status <> 'approved' OR expires_at IS NOT NULL)
);

CREATE INDEX idx_compliance_exceptions_host_id ON compliance_exceptions (host_id);
CREATE INDEX idx_compliance_exceptions_requested_by ON compliance_exceptions (requested_by);
CREATE INDEX idx_compliance_exceptions_decided_by ON compliance_exceptions (decided_by);
CREATE INDEX idx_compliance_exceptions_rule_id ON compliance_exceptions (rule_id);
CREATE INDEX idx_compliance_exceptions_active ON compliance_exceptions (host_id, rule_id, expires_at)
    WHERE status = 'approved';
CREATE INDEX idx_compliance_exceptions_pending ON compliance_exceptions (requested_at)
    WHERE status = 'requested';

CREATE TRIGGER trg_compliance_exceptions_updated_at
    BEFORE UPDATE ON compliance_exceptions
    FOR EACH ROW EXECUTE FUNCTION ow_set_updated_at();

-- +goose Down
DROP TRIGGER IF EXISTS trg_compliance_exceptions_updated_at ON compliance_exceptions;
DROP INDEX IF EXISTS idx_compliance_exceptions_pending;
DROP INDEX IF EXISTS idx_compliance_exceptions_active;
DROP INDEX IF EXISTS idx_compliance_exceptions_rule_id;
DROP INDEX IF EXISTS idx_compliance_exceptions_decided_by;
DROP INDEX IF EXISTS idx_compliance_exceptions_requested_by;
DROP INDEX IF EXISTS idx_compliance_exceptions_host_id;
DROP TABLE IF EXISTS compliance_exceptions;
