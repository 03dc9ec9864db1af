-- Dry run (read-only: no lease): the next page of the pending claims a run would lease now, and their
-- lines, in one statement (the row shape of extract/range.sql). Chosen as source/lease_pending.sql
-- chooses them: pending, of :batch_id when not NULL, leased to no run, and with :skip_unpriceable = 1
-- only claims every line of which a loaded release prices; in claim_id order after :after (NULL: from
-- the first), at most :page of them. Rendered by claims_etl.db.sql.quote.
WITH chosen AS (
    SELECT p.claim_id
    FROM staging.claims AS p
    WHERE p.status = 'pending'
      AND (:after::bigint IS NULL OR p.claim_id > :after::bigint)
      AND (:batch_id::text IS NULL OR p.batch_id = :batch_id::text)
      AND NOT EXISTS (SELECT 1 FROM staging.claim_leases AS l WHERE l.claim_id = p.claim_id)
      AND (:skip_unpriceable = 0 OR NOT EXISTS (
          SELECT 1
          FROM staging.claim_lines AS cl
          WHERE cl.claim_id = p.claim_id
            AND NOT EXISTS (
                SELECT 1 FROM staging.reference_releases AS r
                WHERE r.year = extract(year FROM cl.service_date) AND r.effective_from <= cl.service_date)))
    ORDER BY p.claim_id
    LIMIT :page
)
SELECT c.claim_id,
       false AS is_line,
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
       c.total_charge_cents,
       c.received_date,
       false AS recovered,
       NULL::text AS taken_from,
       NULL::integer AS line_number,
       NULL::date AS service_date,
       NULL::text AS procedure_code,
       NULL::text AS modifier_1,
       NULL::text AS modifier_2,
       NULL::text AS modifier_3,
       NULL::text AS modifier_4,
       NULL::bigint AS units,
       NULL::bigint AS charge_cents,
       NULL::text AS line_place_of_service,
       c.unrepresentable
FROM staging.etl_claims AS c
JOIN chosen USING (claim_id)
UNION ALL
SELECT cl.claim_id,
       true,
       NULL::text,
       NULL::date,
       NULL::text,
       NULL::text,
       NULL::text,
       NULL::text,
       NULL::text,
       NULL::text,
       NULL::text,
       NULL::text,
       NULL::text,
       NULL::bigint,
       NULL::date,
       NULL::boolean,
       NULL::text,
       cl.line_number,
       cl.service_date,
       cl.procedure_code,
       cl.modifier_1,
       cl.modifier_2,
       cl.modifier_3,
       cl.modifier_4,
       cl.units,
       cl.charge_cents,
       cl.place_of_service,
       cl.unrepresentable
FROM staging.etl_claim_lines AS cl
JOIN chosen USING (claim_id)
