-- Claims leased by this run (connectorx; :run_id rendered by claims_etl.sql.quote).
-- patient_id is never read: the engine does not need it, so it cannot leak it.
-- Money arrives as integer cents: numeric(12,2) x 100 is exact, binary floats are not.
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
       l.recovered
FROM staging.claims AS c
JOIN staging.claim_leases AS l ON l.claim_id = c.claim_id
WHERE l.run_id = :run_id
