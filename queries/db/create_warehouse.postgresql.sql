-- Warehouse tables of docs/spec.md §2 for a PostgreSQL target (reached over psqlODBC).
CREATE SCHEMA IF NOT EXISTS warehouse;

CREATE TABLE IF NOT EXISTS warehouse.priced_claims (
    claim_id          bigint PRIMARY KEY,
    batch_id          text NOT NULL,
    run_id            varchar(64) NOT NULL,
    billing_npi       varchar(10) NOT NULL,
    mac               varchar(5) NOT NULL,
    locality          varchar(2) NOT NULL,
    place_of_service  varchar(2) NOT NULL,
    line_count        integer NOT NULL,
    total_charge      numeric(12, 2) NOT NULL,
    total_allowed     numeric(12, 2) NOT NULL,
    priced_at         timestamp NOT NULL
);

CREATE TABLE IF NOT EXISTS warehouse.priced_claim_lines (
    claim_id             bigint NOT NULL,
    line_number          smallint NOT NULL,
    procedure_code       varchar(5) NOT NULL,
    modifier_1           varchar(2),
    units                integer NOT NULL,
    charge               numeric(12, 2) NOT NULL,
    facility             smallint NOT NULL,
    fee_schedule_amount  numeric(12, 2) NOT NULL,
    adjustment_factor    numeric(9, 5) NOT NULL,
    allowed_amount       numeric(12, 2) NOT NULL,
    pricing_note         varchar(16) NOT NULL,
    run_id               varchar(64) NOT NULL,
    PRIMARY KEY (claim_id, line_number)
);

CREATE TABLE IF NOT EXISTS warehouse.rejected_claims (
    claim_id     bigint PRIMARY KEY,
    batch_id     text NOT NULL,
    run_id       varchar(64) NOT NULL,
    rule_ids     varchar(512) NOT NULL,
    rejected_at  timestamp NOT NULL
);

CREATE TABLE IF NOT EXISTS warehouse.etl_runs (
    run_id           varchar(64) PRIMARY KEY,
    started_at       timestamp NOT NULL,
    finished_at      timestamp,
    status           varchar(16) NOT NULL,
    claims_read      bigint NOT NULL,
    claims_priced    bigint NOT NULL,
    claims_rejected  bigint NOT NULL,
    options          text NOT NULL
);

CREATE TABLE IF NOT EXISTS warehouse.etl_stage_timings (
    run_id          varchar(64) NOT NULL,
    stage           varchar(32) NOT NULL,
    seconds         double precision NOT NULL,
    rows_in         bigint NOT NULL,
    rows_out        bigint NOT NULL,
    peak_rss_bytes  bigint NOT NULL,
    PRIMARY KEY (run_id, stage)
);

CREATE TABLE IF NOT EXISTS warehouse.etl_run_metrics (
    run_id  varchar(64) NOT NULL,
    name    varchar(64) NOT NULL,
    labels  varchar(255) NOT NULL,
    value   double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS warehouse.etl_run_alerts (
    run_id     varchar(64) NOT NULL,
    alert      varchar(64) NOT NULL,
    value      double precision NOT NULL,
    threshold  double precision NOT NULL,
    message    varchar(255) NOT NULL
);

-- Added with reference releases (docs/spec.md §7): which release and which conversion factor priced
-- each line; null on lines priced before. `db init` adds them to an existing table.
ALTER TABLE warehouse.priced_claim_lines ADD COLUMN IF NOT EXISTS rvu_release varchar(16);
ALTER TABLE warehouse.priced_claim_lines ADD COLUMN IF NOT EXISTS cf_kind varchar(8);

-- Lines a `reprice` replaced, with the run that replaced them (docs/spec.md §7).
CREATE TABLE IF NOT EXISTS warehouse.priced_claim_line_history (
    claim_id             bigint NOT NULL,
    line_number          smallint NOT NULL,
    procedure_code       varchar(5) NOT NULL,
    modifier_1           varchar(2),
    units                integer NOT NULL,
    charge               numeric(12, 2) NOT NULL,
    facility             smallint NOT NULL,
    fee_schedule_amount  numeric(12, 2) NOT NULL,
    adjustment_factor    numeric(9, 5) NOT NULL,
    allowed_amount       numeric(12, 2) NOT NULL,
    pricing_note         varchar(16) NOT NULL,
    run_id               varchar(64) NOT NULL,
    rvu_release          varchar(16),
    cf_kind              varchar(8),
    replaced_by_run      varchar(64) NOT NULL,
    replaced_at          timestamp(6) NOT NULL,
    PRIMARY KEY (claim_id, line_number, replaced_by_run)
);

-- Warn-severity rules (a rules file, docs/spec.md §5.1) a priced claim broke: a row per claim and rule,
-- written in the chunk's transaction with its priced_claims row.
CREATE TABLE IF NOT EXISTS warehouse.claim_warnings (
    claim_id  bigint NOT NULL,
    rule_id   varchar(16) NOT NULL,
    run_id    varchar(64) NOT NULL,
    PRIMARY KEY (claim_id, rule_id)
);
-- rule_ids was varchar(64), too short once custom rules add their ids: widened in place.
ALTER TABLE warehouse.rejected_claims ALTER COLUMN rule_ids TYPE varchar(512);
