#!/usr/bin/env bash
# Each install line of the README, alone in a fresh virtual environment, then the job it promises
# (tests/install_smoke.py). A dependency that only arrives through another extra fails here.
#   scripts/check_installs.sh [bare] [local] [eval] [ocr] [ray]     (default: all five)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/synthqa-installs.XXXXXX")
trap 'rm -rf "$work"' EXIT
lines=("$@")
[ ${#lines[@]} -gt 0 ] || lines=(bare local eval ocr ray)
for line in "${lines[@]}"; do
  venv="$work/$line-venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  echo "== $line: installing"
  case "$line" in
    # The README's lines, with `synthqa` replaced by this checkout (`.`), which is what gets released.
    bare)  "$venv/bin/pip" install -q . ;;
    local) CMAKE_ARGS="-DGGML_NATIVE=OFF" "$venv/bin/pip" install -q ".[local]" ;;
    eval)  "$venv/bin/pip" install -q torch==2.13.0 && "$venv/bin/pip" install -q ".[eval]" ;;
    ocr)   "$venv/bin/pip" install -q ".[ocr]" ;;
    ray)   "$venv/bin/pip" install -q ".[ray]" ;;
    *) echo "unknown install line: $line (use bare, local, eval, ocr or ray)" >&2; exit 2 ;;
  esac
  echo "== $line: running"
  "$venv/bin/python" tests/install_smoke.py "$line" "$work/$line"
  rm -rf "$venv"
done
