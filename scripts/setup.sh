#!/usr/bin/env bash
# Set up malot for real use on a Linux machine with an NVIDIA GPU, then prove one MiniF2F problem.
#
#   bash scripts/setup.sh [PROBLEM]      (default problem: minif2f:mathd_algebra_10)
#
# Installs malot with its extras into .venv, elan and the Lean toolchain pinned in lean_project/, Mathlib's build
# cache and the REPL, then runs `malot doctor` and `malot prove`. Re-running it skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
PROBLEM="${1:-minif2f:mathd_algebra_10}"
VENV="${MALOT_VENV:-.venv}"

echo "== 1/4 malot and its Python extras"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
pip install -q --upgrade pip
pip install -q -e ".[vllm,hf,retrieval,serve,plot]"
for plugin in plugins/*/; do
  [ -f "$plugin/pyproject.toml" ] && pip install -q -e "$plugin"
done

echo "== 2/4 elan and the pinned Lean toolchain"
if ! command -v elan >/dev/null 2>&1 && [ ! -x "$HOME/.elan/bin/elan" ]; then
  curl -sSfL https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh | sh -s -- -y --default-toolchain none
fi
export PATH="$HOME/.elan/bin:$PATH"

echo "== 3/4 Mathlib's cache and the REPL in lean_project/"
(
  cd lean_project
  lake exe cache get
  lake build
  lake build repl
)

echo "== 4/4 what is usable here, then the main job"
malot doctor || true
malot prove --project lean_project --problem "$PROBLEM"
