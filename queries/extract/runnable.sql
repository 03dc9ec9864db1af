-- Dry run (read-only: no lease): the next page of the pending claims a run would lease now, and their
-- lines, in one statement, in the row shape of extract/pending.sql (stages/extract.split_rows). Chosen as
-- source/lease_pending.sql chooses them: pending, of :batch_id when not NULL, leased to no run, and with
-- :skip_unpriceable = 1 only claims every line of which (dated inside 0001-9999) a loaded release prices;
-- in claim_id order after :after (NULL: from the first), at most :page of them. Rendered by
-- claims_etl.db.sql.quote.
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
            AND cl.service_date BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'
            AND NOT EXISTS (
                SELECT 1 FROM staging.reference_releases AS r
                WHERE r.year = extract(year FROM cl.service_date) AND r.effective_from <= cl.service_date)))
    ORDER BY p.claim_id
    LIMIT :page
)
SELECT *
FROM (
    SELECT c.claim_id,
           false AS is_line,
           c.batch_id AS t1,
           c.billing_npi AS t2,
           c.rendering_npi AS t3,
           c.mac AS t4,
           c.locality AS t5,
           c.place_of_service AS t6,
           c.diagnosis_1 AS t7,
           c.diagnosis_2 AS t8,
           c.diagnosis_3 AS t9,
           c.diagnosis_4 AS t10,
           NULL::text AS t11,
           c.patient_dob AS d1,
           c.received_date AS d2,
           c.total_charge_cents AS n1,
           NULL::bigint AS n2,
           NULL::integer AS line_number,
           false AS recovered,
           c.unrepresentable
    FROM staging.etl_claims AS c
    JOIN chosen USING (claim_id)
    UNION ALL
    SELECT cl.claim_id,
           true,
           cl.procedure_code,
           cl.modifier_1,
           cl.modifier_2,
           cl.modifier_3,
           cl.modifier_4,
           cl.place_of_service,
           NULL,
           NULL,
           NULL,
           NULL,
           NULL,
           cl.service_date,
           NULL,
           cl.units,
           cl.charge_cents,
           cl.line_number,
           NULL,
           cl.unrepresentable
    FROM staging.etl_claim_lines AS cl
    JOIN chosen USING (claim_id)
) AS claim_rows
