-- Warehouse tables of docs/spec.md §2 for SQL Server (production). T-SQL has no
-- CREATE ... IF NOT EXISTS: each object is guarded by SCHEMA_ID / OBJECT_ID. datetime2(6) keeps
-- microseconds; varchar (not nvarchar) because every stored code is ASCII by validation.
IF SCHEMA_ID(N'warehouse') IS NULL EXEC(N'CREATE SCHEMA warehouse');

IF OBJECT_ID(N'warehouse.priced_claims', N'U') IS NULL
CREATE TABLE warehouse.priced_claims (
    claim_id          bigint NOT NULL PRIMARY KEY,
    batch_id          nvarchar(max) NOT NULL,
    run_id            varchar(64) NOT NULL,
    billing_npi       varchar(10) NOT NULL,
    mac               varchar(5) NOT NULL,
    locality          varchar(2) NOT NULL,
    place_of_service  varchar(2) NOT NULL,
    line_count        int NOT NULL,
    total_charge      decimal(12, 2) NOT NULL,
    total_allowed     decimal(12, 2) NOT NULL,
    priced_at         datetime2(6) NOT NULL
);

IF OBJECT_ID(N'warehouse.priced_claim_lines', N'U') IS NULL
CREATE TABLE warehouse.priced_claim_lines (
    claim_id             bigint NOT NULL,
    line_number          smallint NOT NULL,
    procedure_code       varchar(5) NOT NULL,
    modifier_1           varchar(2) NULL,
    units                int NOT NULL,
    charge               decimal(12, 2) NOT NULL,
    facility             tinyint NOT NULL,
    fee_schedule_amount  decimal(12, 2) NOT NULL,
    adjustment_factor    decimal(9, 5) NOT NULL,
    allowed_amount       decimal(12, 2) NOT NULL,
    pricing_note         varchar(16) NOT NULL,
    run_id               varchar(64) NOT NULL,
    CONSTRAINT pk_priced_claim_lines PRIMARY KEY (claim_id, line_number)
);

IF OBJECT_ID(N'warehouse.rejected_claims', N'U') IS NULL
CREATE TABLE warehouse.rejected_claims (
    claim_id     bigint NOT NULL PRIMARY KEY,
    batch_id     nvarchar(max) NOT NULL,
    run_id       varchar(64) NOT NULL,
    rule_ids     varchar(512) NOT NULL,
    rejected_at  datetime2(6) NOT NULL
);

IF OBJECT_ID(N'warehouse.etl_runs', N'U') IS NULL
CREATE TABLE warehouse.etl_runs (
    run_id           varchar(64) NOT NULL PRIMARY KEY,
    started_at       datetime2(6) NOT NULL,
    finished_at      datetime2(6) NULL,
    status           varchar(16) NOT NULL,
    claims_read      bigint NOT NULL,
    claims_priced    bigint NOT NULL,
    claims_rejected  bigint NOT NULL,
    options          nvarchar(max) NOT NULL
);

IF OBJECT_ID(N'warehouse.etl_stage_timings', N'U') IS NULL
CREATE TABLE warehouse.etl_stage_timings (
    run_id          varchar(64) NOT NULL,
    stage           varchar(32) NOT NULL,
    seconds         float NOT NULL,
    rows_in         bigint NOT NULL,
    rows_out        bigint NOT NULL,
    peak_rss_bytes  bigint NOT NULL,
    CONSTRAINT pk_etl_stage_timings PRIMARY KEY (run_id, stage)
);

IF OBJECT_ID(N'warehouse.etl_run_metrics', N'U') IS NULL
CREATE TABLE warehouse.etl_run_metrics (
    run_id  varchar(64) NOT NULL,
    name    varchar(64) NOT NULL,
    labels  varchar(255) NOT NULL,
    value   float NOT NULL
);

IF OBJECT_ID(N'warehouse.etl_run_alerts', N'U') IS NULL
CREATE TABLE warehouse.etl_run_alerts (
    run_id     varchar(64) NOT NULL,
    alert      varchar(64) NOT NULL,
    value      float NOT NULL,
    threshold  float NOT NULL,
    message    varchar(255) NOT NULL
);

-- Added with reference releases (docs/spec.md §7): which release and which conversion factor priced
-- each line; null on lines priced before. `db init` adds them to an existing table.
IF COL_LENGTH(N'warehouse.priced_claim_lines', N'rvu_release') IS NULL
ALTER TABLE warehouse.priced_claim_lines ADD rvu_release varchar(16) NULL;
IF COL_LENGTH(N'warehouse.priced_claim_lines', N'cf_kind') IS NULL
ALTER TABLE warehouse.priced_claim_lines ADD cf_kind varchar(8) NULL;

-- Lines a `reprice` replaced, with the run that replaced them (docs/spec.md §7).
IF OBJECT_ID(N'warehouse.priced_claim_line_history', N'U') IS NULL
CREATE TABLE warehouse.priced_claim_line_history (
    claim_id             bigint NOT NULL,
    line_number          smallint NOT NULL,
    procedure_code       varchar(5) NOT NULL,
    modifier_1           varchar(2) NULL,
    units                int NOT NULL,
    charge               decimal(12, 2) NOT NULL,
    facility             tinyint NOT NULL,
    fee_schedule_amount  decimal(12, 2) NOT NULL,
    adjustment_factor    decimal(9, 5) NOT NULL,
    allowed_amount       decimal(12, 2) NOT NULL,
    pricing_note         varchar(16) NOT NULL,
    run_id               varchar(64) NOT NULL,
    rvu_release          varchar(16) NULL,
    cf_kind              varchar(8) NULL,
    replaced_by_run      varchar(64) NOT NULL,
    replaced_at          datetime2(6) NOT NULL,
    CONSTRAINT pk_priced_claim_line_history PRIMARY KEY (claim_id, line_number, replaced_by_run)
);

-- Warn-severity rules (a rules file, docs/spec.md §5.1) a priced claim broke: a row per claim and rule,
-- written in the chunk's transaction with its priced_claims row.
IF OBJECT_ID(N'warehouse.claim_warnings', N'U') IS NULL
CREATE TABLE warehouse.claim_warnings (
    claim_id  bigint NOT NULL,
    rule_id   varchar(16) NOT NULL,
    run_id    varchar(64) NOT NULL,
    CONSTRAINT pk_claim_warnings PRIMARY KEY (claim_id, rule_id)
);
-- rule_ids was varchar(64), too short once custom rules add their ids: widened in place.
IF COL_LENGTH(N'warehouse.rejected_claims', N'rule_ids') < 512
ALTER TABLE warehouse.rejected_claims ALTER COLUMN rule_ids varchar(512) NOT NULL;
