-- Source (PostgreSQL) tables of docs/spec.md §1, created where missing; an existing database
-- that already has them is used unchanged.
CREATE SCHEMA IF NOT EXISTS staging;

CREATE TABLE IF NOT EXISTS staging.claims (
    claim_id          bigint PRIMARY KEY,
    batch_id          text NOT NULL,
    patient_id        text NOT NULL,
    patient_dob       date,
    billing_npi       text NOT NULL,
    rendering_npi     text,
    mac               text NOT NULL,
    locality          text NOT NULL,
    place_of_service  text NOT NULL,
    diagnosis_1       text NOT NULL,
    diagnosis_2       text,
    diagnosis_3       text,
    diagnosis_4       text,
    total_charge      numeric(12, 2) NOT NULL,
    received_date     date NOT NULL,
    status            text NOT NULL DEFAULT 'pending',
    run_id            text,
    processed_at      timestamptz
);

CREATE TABLE IF NOT EXISTS staging.claim_lines (
    claim_id          bigint NOT NULL REFERENCES staging.claims (claim_id),
    line_number       smallint NOT NULL,
    service_date      date NOT NULL,
    procedure_code    text NOT NULL,
    modifier_1        text,
    modifier_2        text,
    modifier_3        text,
    modifier_4        text,
    units             integer NOT NULL,
    charge            numeric(12, 2) NOT NULL,
    place_of_service  text,
    PRIMARY KEY (claim_id, line_number)
);

-- Pending claims are found through this partial index, not a scan of every processed claim.
CREATE INDEX IF NOT EXISTS claims_pending_idx ON staging.claims (claim_id) WHERE status = 'pending';

-- Engine-owned: which run has which claims in flight, as claim_id intervals (docs/design.md, Range
-- leases): one row per range, from its lease until its last chunk is marked. A range holds the pending
-- claims in [low, high] of its batch (every batch when NULL), decided when it is read. `claims` counts
-- them when leased or taken over; `attempts` counts the range's starts within its run (Dask retries);
-- a recovered range's load first deletes the warehouse rows of the runs in `taken_from`.
CREATE TABLE IF NOT EXISTS staging.range_leases (
    run_id      text NOT NULL,
    low         bigint NOT NULL,
    high        bigint NOT NULL,
    batch_id    text,
    claims      integer NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    recovered   boolean NOT NULL DEFAULT false,
    taken_from  text[],
    leased_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, low),
    CHECK (low <= high)
);
-- No two runs' intervals overlap: db/lease_constraint.sql adds the constraint that says so, run by
-- db init only where it is missing or still the old int8range one (db/lease_constraint_outdated.sql).

-- Migration from per-claim leases (before range leases): each maximal run of consecutive leases (in
-- claim_id order) with the same owner, recovered flag and taken_from becomes one interval of every
-- batch, so the next run recovers a dead run's claims as before; then the old tables go. Upgrade
-- between runs (docs/design.md). The old table is created empty where missing, so that these plain
-- statements run on any database.
CREATE TABLE IF NOT EXISTS staging.claim_leases (claim_id bigint, run_id text, recovered boolean);
ALTER TABLE staging.claim_leases ADD COLUMN IF NOT EXISTS taken_from text[];
INSERT INTO staging.range_leases (run_id, low, high, claims, recovered, taken_from)
SELECT run_id, min(claim_id), max(claim_id), count(*), recovered, taken_from
FROM (
    SELECT claim_id, run_id, recovered, taken_from,
           row_number() OVER (ORDER BY claim_id)
           - row_number() OVER (PARTITION BY run_id, recovered, taken_from ORDER BY claim_id) AS island
    FROM staging.claim_leases
) AS leases
GROUP BY run_id, recovered, taken_from, island;
DROP TABLE staging.claim_leases;
DROP TABLE IF EXISTS staging.run_ranges;

-- Engine-owned: claims a run could not load for a reason other than a rule (docs/spec.md §7), e.g. a
-- claim_id already in the warehouse from another run. Their status is `quarantined`: never leased again.
CREATE TABLE IF NOT EXISTS staging.claim_quarantine (
    claim_id        bigint NOT NULL,
    run_id          text NOT NULL,
    reason          text NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (claim_id, run_id)
);

-- Reference tables: the CMS files' content as published (indicators kept as text, numbers exact),
-- one set of rows per release (docs/spec.md §7); `year` is the service year the release prices.
CREATE TABLE IF NOT EXISTS staging.rvu (
    release               text NOT NULL,
    year                  smallint NOT NULL,
    hcpcs                 text NOT NULL,
    modifier              text NOT NULL DEFAULT '',
    description           text,
    status_code           text NOT NULL,
    not_used_for_medicare text,
    work_rvu              numeric NOT NULL,
    nonfac_pe_rvu         numeric NOT NULL,
    nonfac_na_indicator   text,
    facility_pe_rvu       numeric NOT NULL,
    facility_na_indicator text,
    mp_rvu                numeric NOT NULL,
    nonfac_total          numeric NOT NULL,
    facility_total        numeric NOT NULL,
    pctc_ind              text,
    glob_days             text,
    pre_op                numeric NOT NULL,
    intra_op              numeric NOT NULL,
    post_op               numeric NOT NULL,
    mult_proc             text,
    bilat_surg            text,
    asst_surg             text,
    co_surg               text,
    team_surg             text,
    pric_ind              text,
    endo_base             text,
    conv_factor           numeric NOT NULL,
    qp_conv_factor        numeric,
    diag_imaging_family   text,
    opps_nonfac_pe_rvu    numeric NOT NULL DEFAULT 0,
    opps_facility_pe_rvu  numeric NOT NULL DEFAULT 0,
    opps_mp_rvu           numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (release, hcpcs, modifier)
);

CREATE TABLE IF NOT EXISTS staging.gpci (
    release        text NOT NULL,
    year           smallint NOT NULL,
    mac            text NOT NULL,
    state          text,
    locality       text NOT NULL,
    locality_name  text,
    pw_gpci        numeric NOT NULL,
    pe_gpci        numeric NOT NULL,
    mp_gpci        numeric NOT NULL,
    PRIMARY KEY (release, mac, locality)
);

-- Engine-owned: every reference load is a release (docs/spec.md §7): its label, the service year it
-- prices, the date from which it is in force within that year, its files with their sha256, and a
-- new version on every load (the reference cache keys its entries by the versions, so a reload can
-- never serve a stale frame).
CREATE TABLE IF NOT EXISTS staging.reference_releases (
    release         text PRIMARY KEY,
    year            smallint NOT NULL,
    effective_from  date NOT NULL,
    rvu_file        text NOT NULL,
    rvu_sha256      text NOT NULL,
    qp_source       text,
    gpci_file       text NOT NULL,
    gpci_sha256     text NOT NULL,
    work_gpci       text,
    version         uuid NOT NULL,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (year, effective_from),
    CHECK (effective_from >= make_date(year, 1, 1) AND effective_from <= make_date(year, 12, 31))
);

-- Engine-owned: the NPIs of qualifying APM participants per service year (`reference load-qp`),
-- priced with the QP conversion factor, and one row per loaded list (its file, sha256, version).
CREATE TABLE IF NOT EXISTS staging.qp_npis (
    year  smallint NOT NULL,
    npi   text NOT NULL,
    PRIMARY KEY (year, npi)
);
CREATE TABLE IF NOT EXISTS staging.qp_lists (
    year       smallint PRIMARY KEY,
    file       text NOT NULL,
    sha256     text NOT NULL,
    npis       integer NOT NULL,
    version    uuid NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now()
);

-- Engine-owned: the digest of the Redis reference cache entries of each reference version, written by
-- the run that read the frames from these tables. Redis is not trusted (whoever can write to it could
-- re-sign an entry); an entry is used only when it hashes to the digest held here (reference/cache.py).
CREATE TABLE IF NOT EXISTS staging.reference_cache_digests (
    version     text PRIMARY KEY,
    digest      bytea NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now()
);

-- Migration from one reference set per year (before releases): those rows become release <year>A,
-- effective January 1, which prices exactly as before. The legacy version table is created if
-- missing only so that these statements run on any database; it is dropped once carried over.
ALTER TABLE staging.rvu ADD COLUMN IF NOT EXISTS release text;
ALTER TABLE staging.rvu ADD COLUMN IF NOT EXISTS qp_conv_factor numeric;
ALTER TABLE staging.gpci ADD COLUMN IF NOT EXISTS release text;
UPDATE staging.rvu SET release = year || 'A' WHERE release IS NULL;
UPDATE staging.gpci SET release = year || 'A' WHERE release IS NULL;
ALTER TABLE staging.rvu ALTER COLUMN release SET NOT NULL;
ALTER TABLE staging.gpci ALTER COLUMN release SET NOT NULL;
ALTER TABLE staging.rvu DROP CONSTRAINT IF EXISTS rvu_pkey;
ALTER TABLE staging.rvu ADD CONSTRAINT rvu_pkey PRIMARY KEY (release, hcpcs, modifier);
ALTER TABLE staging.gpci DROP CONSTRAINT IF EXISTS gpci_pkey;
ALTER TABLE staging.gpci ADD CONSTRAINT gpci_pkey PRIMARY KEY (release, mac, locality);
CREATE TABLE IF NOT EXISTS staging.reference_versions (
    year       smallint PRIMARY KEY,
    version    uuid NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO staging.reference_releases
    (release, year, effective_from, rvu_file, rvu_sha256, gpci_file, gpci_sha256, version, loaded_at)
SELECT v.year || 'A', v.year, make_date(v.year, 1, 1), 'loaded before releases', '', 'loaded before releases', '',
       v.version, v.loaded_at
FROM staging.reference_versions AS v
ON CONFLICT DO NOTHING;
DROP TABLE staging.reference_versions;
-- The PPRRVU columns read by name since issue 28 (PRIC IND from 2026, the diagnostic imaging family,
-- the PE and MP RVUs of the OPPS imaging cap) and a release's work GPCI choice. Rows loaded before hold
-- 0 OPPS RVUs, i.e. no cap, until their release is loaded again.
ALTER TABLE staging.rvu ADD COLUMN IF NOT EXISTS pric_ind text;
ALTER TABLE staging.rvu ADD COLUMN IF NOT EXISTS diag_imaging_family text;
ALTER TABLE staging.rvu ADD COLUMN IF NOT EXISTS opps_nonfac_pe_rvu numeric NOT NULL DEFAULT 0;
ALTER TABLE staging.rvu ADD COLUMN IF NOT EXISTS opps_facility_pe_rvu numeric NOT NULL DEFAULT 0;
ALTER TABLE staging.rvu ADD COLUMN IF NOT EXISTS opps_mp_rvu numeric NOT NULL DEFAULT 0;
ALTER TABLE staging.reference_releases ADD COLUMN IF NOT EXISTS work_gpci text;

-- Engine-owned: each run's live progress and final summary (stages, metrics, alerts) as JSON, in the
-- source database every run can reach; `claims-etl report`, `dashboard` and `export` read it.
CREATE TABLE IF NOT EXISTS staging.etl_run_log (
    run_id       text PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    status       text NOT NULL,
    summary      jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS etl_run_log_started_idx ON staging.etl_run_log (started_at DESC)
;

-- Engine-owned: the source rows as the stages read them, in one place for every extract query.
-- patient_id is never selected (the engine does not need it, so it cannot leak it); money is integer
-- cents, since numeric(12,2) x 100 is exact and binary floats are not.
-- Rule V16 (docs/spec.md §5): a value no reader or warehouse can hold never leaves the database. A date
-- outside 0001-01-01..9999-12-31 (infinity, year 300000: connectorx fails past 262142, Polars panics
-- offsetting near its limit), money that is not a finite amount under 10^10 (numeric holds NaN and
-- Infinity; decimal(12,2) in the warehouse) is read as NULL, and a batch_id over 65,535 UTF-8 bytes
-- (MariaDB's text) as its first 16,383 characters (at most 4 bytes each: the rejected_claims row stays
-- writable); `unrepresentable` flags the row, and V16 rejects its claim.
CREATE OR REPLACE VIEW staging.etl_claims AS
SELECT c.claim_id,
       CASE WHEN octet_length(c.batch_id) <= 65535 THEN c.batch_id ELSE left(c.batch_id, 16383) END AS batch_id,
       CASE WHEN c.patient_dob BETWEEN DATE '0001-01-01' AND DATE '9999-12-31' THEN c.patient_dob END AS patient_dob,
       c.billing_npi,
       c.rendering_npi,
       c.mac,
       c.locality,
       c.place_of_service,
       c.diagnosis_1,
       c.diagnosis_2,
       c.diagnosis_3,
       c.diagnosis_4,
       CASE WHEN abs(c.total_charge) < 10000000000 THEN (c.total_charge * 100)::bigint END AS total_charge_cents,
       CASE WHEN c.received_date BETWEEN DATE '0001-01-01' AND DATE '9999-12-31' THEN c.received_date END
           AS received_date,
       c.status,
       coalesce(octet_length(c.batch_id) > 65535
                OR c.patient_dob NOT BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'
                OR c.received_date NOT BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'
                OR NOT abs(c.total_charge) < 10000000000, false) AS unrepresentable
FROM staging.claims AS c;

CREATE OR REPLACE VIEW staging.etl_claim_lines AS
SELECT cl.claim_id,
       cl.line_number::integer AS line_number,
       CASE WHEN cl.service_date BETWEEN DATE '0001-01-01' AND DATE '9999-12-31' THEN cl.service_date END
           AS service_date,
       cl.procedure_code,
       cl.modifier_1,
       cl.modifier_2,
       cl.modifier_3,
       cl.modifier_4,
       cl.units::bigint AS units,
       CASE WHEN abs(cl.charge) < 10000000000 THEN (cl.charge * 100)::bigint END AS charge_cents,
       cl.place_of_service,
       coalesce(cl.service_date NOT BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'
                OR NOT abs(cl.charge) < 10000000000, false) AS unrepresentable
FROM staging.claim_lines AS cl;

-- Service lines that no loaded release prices (docs/spec.md §7): no release of their service year in
-- force on their service date. Dates outside 0001-9999 are not among them (rule V16 rejects those).
-- The lease (leases/lease_pending.sql) and the dry run (extract/runnable.sql) leave the claims of
-- these lines pending with --skip-unpriceable; a plain view, so a claim's NOT EXISTS reads its lines only.
CREATE OR REPLACE VIEW staging.etl_unpriceable_lines AS
SELECT cl.claim_id, cl.service_date
FROM staging.claim_lines AS cl
WHERE cl.service_date BETWEEN DATE '0001-01-01' AND DATE '9999-12-31'
  AND NOT EXISTS (
      SELECT 1 FROM staging.reference_releases AS r
      WHERE r.year = extract(year FROM cl.service_date) AND r.effective_from <= cl.service_date);

-- Claims and their lines as rows of one result, in the row shape of extract/range.sql (stages/extract.
-- split_rows): claim rows (`is_line` false, not recovered, no taken_from) and line rows. The readers other
-- than a run's own (extract/pending.sql, runnable.sql, repriced.sql, marked_rejected.sql) choose claims
-- and filter this. A run's read (extract/range.sql) spells the shape out with its lease's columns: filtering
-- this view by the lease joins staging.claims to the claim rows too, which costs the server more CPU per
-- range (docs/performance.md, Reading a range in one statement).
CREATE OR REPLACE VIEW staging.etl_rows AS
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
FROM staging.etl_claim_lines AS cl;

