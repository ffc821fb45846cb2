#!/usr/bin/env bash
# The test command: install the test dependencies, then run the whole test suite (real Lean 4.35 fixture,
# tiny offline models and a local vLLM CPU server included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-dev.sh
# shellcheck disable=SC1091
. "${MALOT_VENV:-.venv}/bin/activate"
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
set +e
python -m pytest -q "$@"
code=$?
set -e
# pytest exits 5 when a selection collects no test; that is not a failure of the code under test.
if [ "$code" -eq 5 ]; then echo "no tests collected"; exit 0; fi
exit "$code"
