-- A release loaded without a PPRRVU file (GPCI-only, e.g. the 2026 work GPCI floor ending on
-- January 31) takes the RVU rows, QP conversion factor included, of the release before it.
INSERT INTO staging.rvu (
    release, year, hcpcs, modifier, description, status_code, not_used_for_medicare, work_rvu, nonfac_pe_rvu,
    nonfac_na_indicator, facility_pe_rvu, facility_na_indicator, mp_rvu, nonfac_total, facility_total, pctc_ind,
    glob_days, pre_op, intra_op, post_op, mult_proc, bilat_surg, asst_surg, co_surg, team_surg, pric_ind,
    endo_base, conv_factor, qp_conv_factor, diag_imaging_family, opps_nonfac_pe_rvu, opps_facility_pe_rvu,
    opps_mp_rvu
)
SELECT %(release)s, year, hcpcs, modifier, description, status_code, not_used_for_medicare, work_rvu,
       nonfac_pe_rvu, nonfac_na_indicator, facility_pe_rvu, facility_na_indicator, mp_rvu, nonfac_total,
       facility_total, pctc_ind, glob_days, pre_op, intra_op, post_op, mult_proc, bilat_surg, asst_surg, co_surg,
       team_surg, pric_ind, endo_base, conv_factor, qp_conv_factor, diag_imaging_family, opps_nonfac_pe_rvu,
       opps_facility_pe_rvu, opps_mp_rvu
FROM staging.rvu
WHERE release = %(from_release)s
