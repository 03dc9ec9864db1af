-- RVU rows of every release for the pricing joins, numbers as integers scaled by 10^4 (exact; see
-- stages/price.py).
SELECT release,
       year::integer AS year,
       hcpcs,
       modifier,
       status_code,
       (work_rvu * 10000)::bigint AS work_rvu_e4,
       (nonfac_pe_rvu * 10000)::bigint AS nonfac_pe_rvu_e4,
       (facility_pe_rvu * 10000)::bigint AS facility_pe_rvu_e4,
       (mp_rvu * 10000)::bigint AS mp_rvu_e4,
       (conv_factor * 10000)::bigint AS conv_factor_e4,
       (qp_conv_factor * 10000)::bigint AS qp_conv_factor_e4,
       pctc_ind,
       mult_proc,
       bilat_surg,
       co_surg,
       (opps_nonfac_pe_rvu * 10000)::bigint AS opps_nonfac_pe_rvu_e4,
       (opps_facility_pe_rvu * 10000)::bigint AS opps_facility_pe_rvu_e4,
       (opps_mp_rvu * 10000)::bigint AS opps_mp_rvu_e4
FROM staging.rvu
ORDER BY release, hcpcs, modifier  -- one order for every read: keyed lines name a row by its position
