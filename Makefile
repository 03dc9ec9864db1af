# claims-etl: `make demo` runs the pipeline on 100k seeded claims, `make test` passes the tests.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
CLAIMS ?= 100000
# Local defaults; override in the environment (CLAIMS_ETL_SOURCE_URL, CLAIMS_ETL_TARGET_ODBC or _URL).
# TARGET: mariadb (ODBC), postgres (a PostgreSQL warehouse by URL, loaded by COPY) or postgres-odbc (psqlODBC).
export CLAIMS_ETL_SOURCE_URL ?= postgresql://postgres@127.0.0.1:5432/claims_etl
MARIADB_ODBC := Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=claims_warehouse;User=claims_etl;Password=;
POSTGRES_ODBC := Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Database=claims_etl;Uid=postgres;UseServerSidePrepare=0;BatchSize=100;CommLog=0
POSTGRES_URL := postgresql://postgres@127.0.0.1:5432/claims_etl
TARGET ?= mariadb
ifeq ($(TARGET),postgres)
export CLAIMS_ETL_TARGET_URL ?= $(POSTGRES_URL)
else ifeq ($(TARGET),postgres-odbc)
export CLAIMS_ETL_TARGET_ODBC ?= $(POSTGRES_ODBC)
else
export CLAIMS_ETL_TARGET_ODBC ?= $(MARIADB_ODBC)
endif

.PHONY: setup services demo test test-crash test-slow test-unit lint typecheck check bench bench-quick bench-gate bench-transform bench-cold profile profile-source

$(BIN)/claims-etl: pyproject.toml scripts/bootstrap.sh scripts/build_turbodbc.sh
	bash scripts/bootstrap.sh
	@touch $@

setup: $(BIN)/claims-etl  ## virtualenv, Debian packages, turbodbc with Arrow

services: setup  ## local PostgreSQL and MariaDB up, databases created
	bash scripts/services.sh

demo: services  ## fresh local databases, 100k seeded claims, one run, the stage table
	$(BIN)/claims-etl db init
	$(BIN)/claims-etl seed --claims $(CLAIMS)
	$(BIN)/claims-etl run

# Worker processes of `make test` (pytest-xdist; each on databases of its own, tests/db.py): most tests
# wait on subprocesses, servers and timeouts, so more workers than cores still shorten the suite.
TEST_WORKERS ?= 4
test: services  ## the test suite against the real local databases, in TEST_WORKERS processes
	$(BIN)/python -m pytest -m "not slow" -q -n $(TEST_WORKERS)

test-crash: services  ## the randomized crash and range-lease trials (108: 24 + 12 per target, seeded), in TEST_WORKERS processes
	$(BIN)/python -m pytest -m slow -k randomized -q -n $(TEST_WORKERS)

test-slow: services  ## everything the default suite leaves out: every crash point on every target, the trials, the timeouts
	$(BIN)/python -m pytest -m slow -q -n $(TEST_WORKERS)

test-unit: setup  ## the pure tests (tests/unit) and the doctests: no database needed, nothing started
	$(BIN)/python -m pytest -q tests/unit claims_etl

lint:
	$(BIN)/ruff check claims_etl tests benchmarks scripts
	$(BIN)/ruff format --check claims_etl tests benchmarks scripts

typecheck:
	$(BIN)/mypy claims_etl

check: lint typecheck test

BENCH_CLAIMS ?= 100000 1000000
bench: services  ## end-to-end benchmark on fresh databases (see benchmarks/bench.py)
	$(BIN)/python benchmarks/bench.py --claims $(BENCH_CLAIMS) --repeats 3

bench-quick: services  ## a small end-to-end benchmark (20k claims, MariaDB, 3 repeats)
	$(BIN)/python benchmarks/bench.py --claims 20000 --targets mariadb --repeats 3 --baseline-claims 500

bench-transform: services  ## validate + price alone on 100k real extracted claims (benchmarks/transform.py)
	$(BIN)/python benchmarks/transform.py --claims 100000 --repeats 7

bench-gate: services  ## CI perf gate: run/floor on quiet rounds + the run's CPU-s vs benchmarks/baseline.json (benchmarks/gate.py)
	$(BIN)/python benchmarks/gate.py

bench-cold: services  ## time `claims-etl --help` and `--version` to exit, and `claims-etl run` to its first database connection (benchmarks/cold_start.py)
	$(BIN)/python benchmarks/cold_start.py --repeats 5 --importtime

profile: services  ## CPU seconds per stage of one run on 100k fresh claims, under py-spy (benchmarks/profile.py)
	$(BIN)/python benchmarks/profile.py --claims $(CLAIMS)

profile-source: services  ## PostgreSQL CPU of each source statement of a run, on 100k fresh claims (benchmarks/source_cpu.py)
	$(BIN)/python benchmarks/source_cpu.py --claims $(CLAIMS)
