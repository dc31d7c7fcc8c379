#!/usr/bin/env bash
# Load a `synthqa export --format ragas` folder with RAGAS' own EvaluationDataset.from_jsonl, in a throwaway
# virtual environment: ragas pins openai<2 and langchain, which synthqa's environment cannot take, so it is
# not a test dependency (tests/test_export.py checks the export against RAGAS' documented schema instead).
#   scripts/check_ragas_export.sh EXPORT_DIR
set -euo pipefail
dir=$(cd "$1" && pwd)
venv="${RAGAS_VENV:-${TMPDIR:-/tmp}/synthqa-ragas-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  # langchain-community 0.4 dropped a module ragas 0.4.3 imports
  "$venv/bin/pip" install -q "ragas==0.4.3" "langchain-community<0.4"
fi
"$venv/bin/python" - "$dir" <<'PY'
import sys
from pathlib import Path

from ragas import EvaluationDataset

for path in sorted(Path(sys.argv[1]).glob("*.jsonl")):
    dataset = EvaluationDataset.from_jsonl(str(path))
    print(f"{path.name}: {len(dataset)} samples, columns {dataset.features()}")
PY
