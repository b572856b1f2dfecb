#!/usr/bin/env bash
# Runs every benchmark one after another and prints their tables (about 50 minutes on a
# quiet two-core machine). Refreshes assets/benchmarks.json, which the Train page reads.
# Copy the tables into BENCHMARKS.md, RESULTS.md and RELIABILITY.md with the date.
#   benchmarks/run_all.sh            everything
#   benchmarks/run_all.sh zoo presets   only these (file names without .py)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh requirements-dev.txt
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore
all=(interactivity explain_timing app_timing engine_overhead hardware batchnorm zoo zoo_train_step presets seed_results classroom classroom_ws)
for name in "${@:-${all[@]}}"; do
  echo
  echo "## benchmarks/$name.py"
  .venv/bin/python "benchmarks/$name.py"
done
