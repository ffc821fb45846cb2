#!/usr/bin/env bash
# Set up malot for real use on a Linux machine, then prove one MiniF2F problem.
#
#   bash scripts/setup.sh [PROBLEM]      (default problem: minif2f:mathd_algebra_10)
#
# 1. looks for an NVIDIA GPU (nvidia-smi): with one, installs the vLLM stack; without, the CPU (transformers) path;
# 2. installs malot with its extras and the plugins into .venv (MALOT_VENV), with pip's progress bars;
# 3. installs elan and the Lean toolchain pinned in lean_project/; 4. gets Mathlib's build cache and builds the REPL;
# 5. runs `malot doctor` (always, even after a failed step: it says what is missing), then `malot prove`.
# A failed step prints what failed and what to do, and the script goes on; it exits 1 if any step failed.
# Re-running it skips what is already done. The default prover model (DeepSeek-Prover-V1.5-RL with the MA-LoT
# strategy) downloads without a hub account; MA-LoT's own LoT-Solver is gated: `malot prove --preset lot-solver`
# after `huggingface-cli login`.
#
# Environment: MALOT_VENV (default .venv); MALOT_SETUP_SKIP_INSTALL=1 skips the pip installs (use the malot already
# in the venv: re-runs, and the test of this script's control flow).
set -uo pipefail # no -e: each step reports its own failure, and `malot doctor` still runs
cd "$(dirname "$0")/.." || exit 1
PROBLEM="${1:-minif2f:mathd_algebra_10}"
VENV="${MALOT_VENV:-.venv}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
FAILED=()

failed() { # what failed, what to do
  echo "!! failed: $1" >&2
  echo "   what to do: $2" >&2
  FAILED+=("$1")
}

echo "== 1/5 hardware"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/tmp/malot-setup-gpus.$$ 2>/dev/null; then
  GPU=1
  echo "NVIDIA GPU found:"
  sed 's/^/  /' /tmp/malot-setup-gpus.$$
  EXTRAS="vllm,hf,retrieval,serve,plot,mcp"
else
  GPU=0
  echo "no NVIDIA GPU found (nvidia-smi is missing or fails): installing the CPU path (transformers, no CUDA vLLM)."
  echo "  A 7B prover on CPU takes minutes per sample; on this machine, better point malot at a model served on a"
  echo "  GPU machine: malot prove --model http://HOST:8000/v1#NAME ... (see README, 'LLM backends')."
  EXTRAS="hf,retrieval,serve,plot,mcp"
fi
rm -f /tmp/malot-setup-gpus.$$

echo "== 2/5 malot and its Python extras (.[${EXTRAS}] and the plugins) into $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || failed "creating the virtual environment $VENV" \
    "install Python 3.11+ with venv (Debian/Ubuntu: apt-get install python3-venv), then re-run"
fi
if [ -x "$VENV/bin/python" ]; then
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
fi
if [ "${MALOT_SETUP_SKIP_INSTALL:-0}" = "1" ]; then
  echo "skipped (MALOT_SETUP_SKIP_INSTALL=1): using the malot already installed in $VENV"
else
  pip_ok=1
  pip install --progress-bar on --upgrade pip || pip_ok=0
  if [ "$pip_ok" = 1 ] && [ "$GPU" = 0 ]; then
    echo "-- the CPU build of torch first (the default wheel pulls several GB of CUDA libraries)"
    pip install --progress-bar on torch --index-url https://download.pytorch.org/whl/cpu || pip_ok=0
  fi
  if [ "$pip_ok" = 1 ]; then
    echo "-- malot with [${EXTRAS}]$([ "$GPU" = 1 ] && echo ' (vLLM with CUDA: several GB)')"
    pip install --progress-bar on -e ".[${EXTRAS}]" || pip_ok=0
  fi
  if [ "$pip_ok" = 1 ]; then
    for plugin in plugins/*/; do
      if [ -f "$plugin/pyproject.toml" ]; then
        echo "-- plugin $plugin"
        pip install --progress-bar on -e "$plugin" || pip_ok=0
      fi
    done
  fi
  [ "$pip_ok" = 1 ] || failed "pip install (see pip's message above)" \
    "pip needs to reach PyPI: check the network or proxy (pip's --proxy / PIP_INDEX_URL), then re-run"
fi

echo "== 3/5 elan and the pinned Lean toolchain"
export PATH="$HOME/.elan/bin:$PATH"
if command -v elan >/dev/null 2>&1; then
  echo "elan is installed: $(command -v elan)"
elif curl -sSfL https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -o /tmp/elan-init.$$.sh; then
  sh /tmp/elan-init.$$.sh -y --default-toolchain none ||
    failed "installing elan" "run 'sh /tmp/elan-init.$$.sh -y' by hand to see why, then re-run"
else
  failed "downloading the elan installer from raw.githubusercontent.com (curl, above)" \
    "check the network (or install elan by hand: https://github.com/leanprover/elan), then re-run"
fi

echo "== 4/5 Mathlib's cache and the REPL in each pinned project (lean_project/: MiniF2F, v4.24.0;"
echo "   lean_projects/putnambench/: PutnamBench, v4.27.0; MALOT_SETUP_PROJECTS to choose)"
if command -v lake >/dev/null 2>&1; then
  for proj in ${MALOT_SETUP_PROJECTS:-lean_project lean_projects/putnambench}; do
    echo "-- $proj ($(cat "$proj/lean-toolchain"))"
    (cd "$proj" && lake exe cache get) || failed "downloading Mathlib's build cache in $proj (lake exe cache get)" \
      "check the network, then re-run (without the cache, 'lake build' compiles Mathlib: hours)"
    (cd "$proj" && lake build) || failed "building $proj (lake build)" "see lake's message above"
    (cd "$proj" && lake build repl) || failed "building the REPL in $proj (lake build repl)" \
      "see lake's message above; without the REPL malot checks proofs with 'lake env lean' (slower)"
  done
else
  echo "skipped: no 'lake' (elan did not install; see step 3)"
  FAILED+=("Lean project (no lake)")
fi

echo "== 5/5 what is usable here, then the main job"
if ! command -v malot >/dev/null 2>&1; then
  failed "malot is not installed in $VENV" "fix step 2 above, then re-run"
  exit 1
fi
malot doctor
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "!! skipping 'malot prove --project lean_project --problem $PROBLEM': ${#FAILED[@]} step(s) failed:" >&2
  printf '   - %s\n' "${FAILED[@]}" >&2
  echo "   fix them (malot doctor above says what is missing), then re-run bash scripts/setup.sh" >&2
  exit 1
fi
malot prove --project lean_project --problem "$PROBLEM" || {
  status=$?
  [ "$status" = 1 ] && echo "no proof found this time (exit 1): the set-up works; try --samples 16" && exit 0
  failed "malot prove (exit $status)" "read the error above; 'malot doctor' says what is missing"
  exit 1
}
