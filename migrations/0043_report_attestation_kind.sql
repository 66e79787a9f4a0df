-- Serves: attestation reports (a signed statement by an accountable user that the scoped hosts
-- were assessed; the report records who attested and when). Down removes attestation reports,
-- which the previous kind constraint cannot hold.

-- +goose Up
ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_kind_check;
ALTER TABLE reports ADD CONSTRAINT reports_kind_check
    CHECK (kind IN ('compliance', 'posture', 'executive', 'attestation'));

ALTER TABLE reports ADD COLUMN attested_by UUID REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE reports ADD COLUMN attested_at TIMESTAMPTZ;
ALTER TABLE reports ADD COLUMN attestation_statement TEXT;
ALTER TABLE reports ADD CONSTRAINT reports_attestation_check
    CHECK (kind = 'attestation' OR (attested_by IS NULL AND attested_at IS NULL AND attestation_statement IS NULL));

CREATE INDEX idx_reports_attested_by ON reports (attested_by);

-- +goose Down
DROP INDEX IF EXISTS idx_reports_attested_by;
DELETE FROM reports WHERE kind = 'attestation';
ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_attestation_check;
ALTER TABLE reports DROP COLUMN IF EXISTS attestation_statement;
ALTER TABLE reports DROP COLUMN IF EXISTS attested_at;
ALTER TABLE reports DROP COLUMN IF EXISTS attested_by;
ALTER TABLE reports DROP CONSTRAINT IF EXISTS reports_kind_check;
ALTER TABLE reports ADD CONSTRAINT reports_kind_check
    CHECK (kind IN ('compliance', 'posture', 'executive'));
