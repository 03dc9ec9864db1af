-- Lines of the pending claims chosen like extract__pending_claims.sql (same :batch_id and :limit).
WITH chosen AS (
    SELECT c.claim_id
    FROM staging.claims AS c
    WHERE c.status = 'pending'
      AND (:batch_id::text IS NULL OR c.batch_id = :batch_id::text)
    ORDER BY c.claim_id
    LIMIT :limit
)
SELECT cl.claim_id,
       cl.line_number::integer AS line_number,
       cl.service_date,
       cl.procedure_code,
       cl.modifier_1,
       cl.modifier_2,
       cl.modifier_3,
       cl.modifier_4,
       cl.units::bigint AS units,
       (cl.charge * 100)::bigint AS charge_cents,
       cl.place_of_service
FROM staging.claim_lines AS cl
JOIN chosen USING (claim_id)
