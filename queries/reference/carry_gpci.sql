-- A release loaded without a GPCI file takes the GPCI rows of the release before it.
INSERT INTO staging.gpci (release, year, mac, state, locality, locality_name, pw_gpci, pe_gpci, mp_gpci)
SELECT %(release)s, year, mac, state, locality, locality_name, pw_gpci, pe_gpci, mp_gpci
FROM staging.gpci
WHERE release = %(from_release)s
