#!/usr/bin/env bash
# Make sure the local databases claims-etl runs against are up, and create its databases.
# PostgreSQL: the server on 127.0.0.1:5432 if one answers, else a throwaway cluster in .local/pg
# started with the PostgreSQL server binaries. MariaDB: the server on 127.0.0.1:3306 if one answers,
# else the Debian-installed mariadbd is started. Both are installed by scripts/bootstrap.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_PORT=${PG_PORT:-5432}
PG_DB=${PG_DB:-claims_etl}
MARIADB_DB=${MARIADB_DB:-claims_warehouse}

pg_up() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }
if ! pg_up; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  data=.local/pg
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    owner=$(id -un); [ "$owner" = root ] && owner=postgres
    chown -R "$owner" .local/pg
    runuser() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
    runuser "$bindir/initdb -D $data -U postgres --auth=trust >/dev/null"
  fi
  echo "starting a throwaway PostgreSQL cluster in $data on port $PG_PORT"
  if [ "$(id -u)" -eq 0 ]; then
    su postgres -s /bin/sh -c "$bindir/pg_ctl -D $data -o '-p $PG_PORT -k /tmp' -l $data/log -w start" >/dev/null
  else
    "$bindir/pg_ctl" -D "$data" -o "-p $PG_PORT -k /tmp" -l "$data/log" -w start >/dev/null
  fi
fi
if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
fi

mariadb_up() { mysqladmin -h 127.0.0.1 -P 3306 -uroot status >/dev/null 2>&1; }
if ! mariadb_up && command -v mariadbd >/dev/null; then
  echo "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do mariadb_up && break; sleep 1; done
fi
if mariadb_up; then
  mysql -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS $MARIADB_DB"
else
  echo "MariaDB is not available: MariaDB-target tests will be skipped" >&2
fi
echo "services: ok"
