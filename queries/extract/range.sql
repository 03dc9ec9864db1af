-- The claims a range lease of this run holds in claim_id range [:low, :high] (pending, of the lease's
-- batch: docs/design.md, Range leases) AND their service lines, in ONE statement (connectorx; :run_id,
-- :low and :high rendered by claims_etl.db.sql.quote; a lease lost to another run reads nothing): one statement reads one snapshot, so a
-- producer's transaction that changes a claim and its lines together (total_charge with a line's charge)
-- is seen whole or not at all, never half (docs/spec.md §1). A range read in partitions runs this for
-- each sub-range (stages/extract.partition_bounds); a claim and its lines share a claim_id, so each still
-- reads whole claims. The bounds are repeated on
-- each table: PostgreSQL carries equalities, not ranges, across a join, and without them every range's
-- read scanned the whole table.
-- The row shape of staging.etl_rows, spelled out with the lease's columns (that view's comment says why)
-- (stages/extract.split_rows): a claim row (`is_line` false) or a line row (`is_line` true),
-- the two kinds sharing columns of one type so that no row carries the other kind's columns (a narrower
-- result reads faster, benchmarks/LOG.md): t1-t11 text, d1-d2 date, n1-n2 bigint. Claim: t1 batch_id,
-- t2 billing_npi, t3 rendering_npi, t4 mac, t5 locality, t6 place_of_service, t7-t10 diagnosis_1-4,
-- t11 the lease's taken_from, d1 patient_dob, d2 received_date, n1 total_charge_cents, recovered. Line: line_number,
-- t1 procedure_code, t2-t5 modifier_1-4, t6 place_of_service, d1 service_date, n1 units, n2 charge_cents.
-- One SELECT around the UNION ALL: one statement, one snapshot.
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
           array_to_string(l.taken_from, ' ') AS t11,
           c.patient_dob AS d1,
           c.received_date AS d2,
           c.total_charge_cents AS n1,
           NULL::bigint AS n2,
           NULL::integer AS line_number,
           l.recovered AS recovered,
           c.unrepresentable
    FROM staging.range_leases AS l
    JOIN staging.etl_claims AS c ON c.claim_id BETWEEN :low AND :high
    WHERE l.run_id = :run_id
      AND l.low <= :low
      AND l.high >= :high
      AND c.status = 'pending'
      -- the raw batch_id: the view's is cut where MariaDB could not hold it (V16)
      AND (l.batch_id IS NULL OR EXISTS (
          SELECT 1 FROM staging.claims AS b WHERE b.claim_id = c.claim_id AND b.batch_id = l.batch_id))
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
    FROM staging.range_leases AS l
    JOIN staging.claims AS p ON p.claim_id BETWEEN :low AND :high
    JOIN staging.etl_claim_lines AS cl ON cl.claim_id = p.claim_id
    WHERE l.run_id = :run_id
      AND l.low <= :low
      AND l.high >= :high
      AND cl.claim_id BETWEEN :low AND :high
      AND p.status = 'pending'
      AND (l.batch_id IS NULL OR p.batch_id = l.batch_id)
) AS claim_rows
