#!/usr/bin/env bash
# Create .venv and install synthqa with the extras named in $1 (default: local).
#   scripts/install.sh local            the offline main job (llama.cpp + bundled model)
#   scripts/install.sh local,eval,test  everything the test suite needs
#   scripts/install.sh ""               bare synthqa (remote endpoints only)
# $VENV names another virtual environment folder (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1-local}"
venv="${VENV:-.venv}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
case ",$extras," in
  *,eval,*)
    # The CPU build first: asked for through sentence-transformers, pip would pull a multi-GB CUDA build.
    "$venv/bin/pip" install -q "torch==2.13.0" ;;
esac
# llama-cpp-python has no wheel: it compiles once (4-11 min on 2 cores), then pip's wheel cache is reused.
# GGML_NATIVE=OFF builds for AVX2-class CPUs instead of `-march=native`: some virtual machines report AMX or
# AVX-512 that their hypervisor does not really provide, and a native build then dies of SIGILL on the
# first request.
own_cmake_args="${CMAKE_ARGS:-}"
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF}"
if [ -n "$extras" ]; then target=".[$extras]"; else target="."; fi
"$venv/bin/pip" install -q -e "$target"
case ",$extras,$own_cmake_args" in
  *,local,*,)
    # A wheel cached by an earlier native build would bring those instructions back: rebuild it once.
    if "$venv/bin/python" -c "import llama_cpp, sys; sys.exit('AMX_INT8 = 1' in llama_cpp.llama_print_system_info().decode())"; then :; else
      echo "llama-cpp-python came from a wheel built for this CPU's AMX: rebuilding it portably (once)" >&2
      "$venv/bin/pip" cache remove llama_cpp_python >/dev/null 2>&1 || true
      "$venv/bin/pip" install -q --force-reinstall --no-deps "$("$venv/bin/python" -c 'import importlib.metadata as m; print("llama-cpp-python==" + m.version("llama-cpp-python"))')"
    fi ;;
esac
