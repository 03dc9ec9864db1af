-- Pending claims for exploration (read-only: no lease). :batch_id (NULL for all) and :limit (NULL for
-- no limit) are rendered by claims_etl.sql.quote. patient_id is never read.
SELECT c.claim_id,
       c.batch_id,
       c.patient_dob,
       c.billing_npi,
       c.rendering_npi,
       c.mac,
       c.locality,
       c.place_of_service,
       c.diagnosis_1,
       c.diagnosis_2,
       c.diagnosis_3,
       c.diagnosis_4,
       (c.total_charge * 100)::bigint AS total_charge_cents,
       c.received_date,
       false AS recovered
FROM staging.claims AS c
WHERE c.status = 'pending'
  AND (:batch_id::text IS NULL OR c.batch_id = :batch_id::text)
ORDER BY c.claim_id
LIMIT :limit
