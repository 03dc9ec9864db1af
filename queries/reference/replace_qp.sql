-- Loading a year's QP list replaces it atomically.
DELETE FROM staging.qp_npis WHERE year = %(year)s;
DELETE FROM staging.qp_lists WHERE year = %(year)s
