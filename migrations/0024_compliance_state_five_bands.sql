-- Serves: compliance state banding (hosts list and dashboard colour hosts by five score bands).
-- The band is recomputed from the score: compliant >= 95, minor >= 80, moderate >= 60,
-- major >= 40, critical below; 'unknown' while a host has no score. Down maps back to the old
-- bands (minor/moderate -> partial, major/critical -> non_compliant).

-- +goose Up
ALTER TABLE host_compliance_state DROP CONSTRAINT IF EXISTS host_compliance_state_band_check;

UPDATE host_compliance_state
SET band = CASE
        WHEN score IS NULL THEN 'unknown'
        WHEN score >= 95 THEN 'compliant'
        WHEN score >= 80 THEN 'minor'
        WHEN score >= 60 THEN 'moderate'
        WHEN score >= 40 THEN 'major'
        ELSE 'critical'
    END;

ALTER TABLE host_compliance_state ADD CONSTRAINT host_compliance_state_band_check
    CHECK (band IN ('compliant', 'minor', 'moderate', 'major', 'critical', 'unknown'));

-- +goose Down
ALTER TABLE host_compliance_state DROP CONSTRAINT IF EXISTS host_compliance_state_band_check;

UPDATE host_compliance_state
SET band = CASE band
        WHEN 'compliant' THEN 'compliant'
        WHEN 'minor' THEN 'partial'
        WHEN 'moderate' THEN 'partial'
        WHEN 'major' THEN 'non_compliant'
        WHEN 'critical' THEN 'non_compliant'
        ELSE 'unknown'
    END;

ALTER TABLE host_compliance_state ADD CONSTRAINT host_compliance_state_band_check
    CHECK (band IN ('compliant', 'partial', 'non_compliant', 'unknown'));
