#!/usr/bin/env bash
# Set up everything claims-etl needs on a fresh Debian 12 machine (run as root or with sudo):
# Debian packages (unixODBC, the PostgreSQL, MariaDB and FreeTDS ODBC drivers, the PostgreSQL and
# MariaDB servers for local runs), a virtualenv with the pinned Python dependencies, and turbodbc built
# with Arrow support (cached outside the repository). Idempotent: a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# chromium and its fonts: tests/integration/ops/test_html_report_browser.py renders the HTML run report headless.
packages=(make python3-venv python3-dev unixodbc unixodbc-dev odbc-postgresql odbc-mariadb tdsodbc
          libboost-dev g++ pkg-config postgresql postgresql-client mariadb-server mariadb-client redis-server
          chromium fonts-dejavu-core)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  # Where the packages start their servers, scripts/services.sh uses them; otherwise it starts them.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
# turbodbc builds against the pinned pyarrow; build tools first, then turbodbc, then the project.
"${PIP[@]}" pyarrow==21.0.0 "numpy>=1.26" pybind11 meson-python meson ninja
bash scripts/build_turbodbc.sh "$VENV"
"${PIP[@]}" -e ".[dev]"
# promtool (tests/unit/ops/test_logs_metrics.py lints the metrics textfile with it): the binary alone, out of
# Debian's prometheus package, into the virtualenv; installing the package would also start a server.
if [ ! -x "$VENV/bin/promtool" ]; then
  work=$(mktemp -d)
  (cd "$work" && apt-get download -qq prometheus 2>/dev/null || { $SUDO apt-get update -qq && apt-get download -qq prometheus; })
  dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$work" ./usr/bin/promtool
  install -m 0755 "$work/usr/bin/promtool" "$VENV/bin/promtool"
  rm -rf "$work"
fi
echo "bootstrap: ok ($VENV)"
