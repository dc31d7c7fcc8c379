#!/usr/bin/env bash
# Install everything the tests need into .venv, then run the whole suite. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh local,eval,test,ocr,ray || exit 1
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # The HTML report is checked in a real headless browser.
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null || echo "could not install chromium: browser tests will be skipped"
fi
.venv/bin/python -m pytest -ra "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$rc"
