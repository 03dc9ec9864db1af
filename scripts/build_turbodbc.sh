#!/usr/bin/env bash
# Build turbodbc (source-only since 5.x) with Arrow support against the pyarrow of the given venv,
# and cache the wheel outside the repository so the next install takes seconds.
#
# turbodbc needs simdutf and Arrow C++; Debian packages neither. simdutf's single-file amalgamation
# ships inside the sdist of fastpybase64 (vendor/), Arrow C++ ships inside the pyarrow wheel.
set -euo pipefail

VENV=${1:?usage: build_turbodbc.sh VENV}
TURBODBC_VERSION=${TURBODBC_VERSION:-5.3.0}
PY="$VENV/bin/python"
# meson-python finds meson and ninja on PATH: the venv's, not whatever the machine may have.
export PATH="$(cd "$VENV/bin" && pwd):$PATH"
PYARROW_VERSION=$("$PY" -c 'import pyarrow; print(pyarrow.__version__)')
CACHE=${CLAIMS_ETL_CACHE:-$HOME/.cache/claims-etl}
WHEELS="$CACHE/wheels/pyarrow-$PYARROW_VERSION"
mkdir -p "$WHEELS"

if "$PY" -c 'from turbodbc_intern import set_arrow_parameters' 2>/dev/null; then
  echo "turbodbc with Arrow support already installed"
  exit 0
fi

wheel=$(ls "$WHEELS"/turbodbc-"$TURBODBC_VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [ -n "$wheel" ]; then
  echo "installing cached turbodbc wheel built against pyarrow $PYARROW_VERSION"
  "$PY" -m pip install -q --no-deps "$wheel"
  exit 0
fi

echo "building turbodbc $TURBODBC_VERSION against pyarrow $PYARROW_VERSION (takes ~2-3 minutes)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# simdutf: static library + pkg-config file from the amalgamation vendored in fastpybase64's sdist.
"$PY" -m pip download -q --no-deps --no-binary :all: -d "$work" fastpybase64==0.1.1
tar -xzf "$work"/fastpybase64-0.1.1.tar.gz -C "$work"
simdutf_src=$(dirname "$(find "$work" -name simdutf.cpp | head -n1)")
prefix="$work/prefix"
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
cp "$simdutf_src/simdutf.h" "$prefix/include/"
g++ -O3 -std=c++17 -fPIC -c "$simdutf_src/simdutf.cpp" -I "$simdutf_src" -o "$work/simdutf.o"
ar rcs "$prefix/lib/libsimdutf.a" "$work/simdutf.o"
cat >"$prefix/lib/pkgconfig/simdutf.pc" <<EOF
prefix=$prefix
Name: simdutf
Description: simdutf (amalgamation)
Version: 5.0.0
Cflags: -I\${prefix}/include
Libs: -L\${prefix}/lib -lsimdutf
EOF

# arrow: a pkg-config file pointing into the installed pyarrow wheel.
"$PY" - "$prefix/lib/pkgconfig/arrow.pc" <<'EOF'
import sys
import pyarrow

pyarrow.create_library_symlinks()
include = pyarrow.get_include()
libdirs = " ".join(f"-L{d}" for d in pyarrow.get_library_dirs())
with open(sys.argv[1], "w") as pc:
    pc.write(
        f"Name: arrow\nDescription: Arrow C++ from the pyarrow wheel\nVersion: {pyarrow.__version__}\n"
        f"Cflags: -I{include}\nLibs: {libdirs} -larrow\n"
    )
EOF

pybind_inc=$("$PY" -c 'import pybind11; print(pybind11.get_include())')
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CXXFLAGS="-I$pybind_inc -I$prefix/include ${CXXFLAGS:-}"
"$PY" -m pip wheel -q --no-deps --no-build-isolation --no-binary turbodbc \
  -w "$WHEELS" "turbodbc==$TURBODBC_VERSION"
"$PY" -m pip install -q --no-deps "$WHEELS"/turbodbc-"$TURBODBC_VERSION"-*.whl
"$PY" -c 'from turbodbc_intern import set_arrow_parameters; print("turbodbc with Arrow support: ok")'
