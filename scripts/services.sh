#!/usr/bin/env bash
# Make sure the local services claims-etl runs against are up, with its databases and a login for it.
# PostgreSQL: the server on 127.0.0.1:5432 if one answers (Debian's cluster gets a trust rule for the
# postgres role on 127.0.0.1 if it refuses us), else a throwaway cluster in /var/tmp/claims-etl-pg.
# MariaDB: the server on 127.0.0.1:3306, else Debian's mariadbd is started; a password-less local
# account `claims_etl` is created through the root socket. Redis: started if installed but down.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_PORT=${PG_PORT:-5432}
PG_DB=${PG_DB:-claims_etl}
MARIADB_DB=${MARIADB_DB:-claims_warehouse}
as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
pg_login() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atqc "SELECT 1" >/dev/null 2>&1; }

if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  data=/var/tmp/claims-etl-pg
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" -eq 0 ] && chown postgres "$data"
    as_postgres "$bindir/initdb -D $data -U postgres --auth=trust >/dev/null"
  fi
  echo "starting a throwaway PostgreSQL cluster in $data on port $PG_PORT"
  as_postgres "$bindir/pg_ctl -D $data -o '-p $PG_PORT -k /tmp' -l $data/log -w start >/dev/null"
fi
if ! pg_login && [ "$(id -u)" -eq 0 ]; then
  hba=$(as_postgres "psql -Atqc 'SHOW hba_file'")
  echo "PostgreSQL refuses postgres@127.0.0.1: adding a trust rule for it to $hba (local development)"
  sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  as_postgres "psql -qc 'SELECT pg_reload_conf()'" >/dev/null
fi
if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1; then
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE $PG_DB" >/dev/null
fi

mariadb_up() { mysqladmin -uroot status >/dev/null 2>&1 || mysqladmin -h 127.0.0.1 -uroot status >/dev/null 2>&1; }
if ! mariadb_up && command -v mariadbd >/dev/null; then
  echo "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  for _ in $(seq 1 30); do mariadb_up && break; sleep 1; done
fi
if mariadb_up; then
  # root logs in through the socket on Debian; the engine and the tests use TCP as claims_etl.
  mysql -uroot -e "
    CREATE DATABASE IF NOT EXISTS $MARIADB_DB;
    CREATE USER IF NOT EXISTS 'claims_etl'@'localhost'; CREATE USER IF NOT EXISTS 'claims_etl'@'127.0.0.1';
    CREATE USER IF NOT EXISTS 'claims_etl'@'%';
    GRANT ALL PRIVILEGES ON *.* TO 'claims_etl'@'localhost' WITH GRANT OPTION;
    GRANT ALL PRIVILEGES ON *.* TO 'claims_etl'@'127.0.0.1' WITH GRANT OPTION;
    GRANT ALL PRIVILEGES ON *.* TO 'claims_etl'@'%' WITH GRANT OPTION;"
else
  echo "MariaDB is not available: MariaDB-target tests will be skipped" >&2
fi

if command -v redis-server >/dev/null && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
echo "services: ok"
