#!/usr/bin/env bash
# Runs the whole test suite (first run installs .venv with the test tools).
# Extra arguments go to pytest, e.g. ./test.sh tests/test_datasets.py -x
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh requirements-dev.txt
[ -x /usr/bin/chromium ] || echo "note: /usr/bin/chromium is missing, so browser tests are skipped (Debian: apt-get install chromium)."
[ -d /usr/share/datasets/fashion-mnist ] || echo "note: Debian's dataset-fashion-mnist is missing, so the full Fashion-MNIST test is skipped."
exec .venv/bin/python -m pytest "$@"
