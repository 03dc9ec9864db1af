-- Claims this run already rejected and marked in one claim_id range, and their lines, in one statement
-- (connectorx; :run_id, :low and :high rendered by claims_etl.db.sql.quote). Read only when a range is
-- retried: validating them again gives the rule ids its dead attempt wrote to the warehouse, for the
-- run's rejections by rule.
-- The row shape (stages/extract.split_rows): a claim row (`is_line` false) or a line row (`is_line` true),
-- the two kinds sharing columns of one type so that no row carries the other kind's columns (a narrower
-- result reads faster, benchmarks/LOG.md): t1-t11 text, d1-d2 date, n1-n2 bigint. Claim: t1 batch_id,
-- t2 billing_npi, t3 rendering_npi, t4 mac, t5 locality, t6 place_of_service, t7-t10 diagnosis_1-4,
-- t11 taken_from, d1 patient_dob, d2 received_date, n1 total_charge_cents, recovered. Line: line_number,
-- t1 procedure_code, t2-t5 modifier_1-4, t6 place_of_service, d1 service_date, n1 units, n2 charge_cents.
-- One SELECT around the UNION ALL: connectorx partitions only a single SELECT statement.
SELECT *
FROM (
    SELECT e.claim_id,
           false AS is_line,
           e.batch_id AS t1,
           e.billing_npi AS t2,
           e.rendering_npi AS t3,
           e.mac AS t4,
           e.locality AS t5,
           e.place_of_service AS t6,
           e.diagnosis_1 AS t7,
           e.diagnosis_2 AS t8,
           e.diagnosis_3 AS t9,
           e.diagnosis_4 AS t10,
           NULL::text AS t11,
           e.patient_dob AS d1,
           e.received_date AS d2,
           e.total_charge_cents AS n1,
           NULL::bigint AS n2,
           NULL::integer AS line_number,
           false AS recovered,
           e.unrepresentable
    FROM staging.etl_claims AS e
    JOIN staging.claims AS c ON c.claim_id = e.claim_id
    WHERE c.run_id = :run_id
      AND c.status = 'rejected'
      AND c.claim_id BETWEEN :low AND :high
      AND e.claim_id BETWEEN :low AND :high
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
    JOIN staging.claims AS c ON c.claim_id = cl.claim_id
    WHERE c.run_id = :run_id
      AND c.status = 'rejected'
      AND c.claim_id BETWEEN :low AND :high
      AND cl.claim_id BETWEEN :low AND :high
) AS claim_rows
