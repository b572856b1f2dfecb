#!/usr/bin/env bash
# Lints, then runs the whole test suite (first run installs .venv with the test tools).
# Extra arguments go to pytest, e.g. ./test.sh tests/data/test_datasets.py -x
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh requirements-dev.txt
[ -x /usr/bin/chromium ] || echo "note: /usr/bin/chromium is missing, so browser tests are skipped (Debian: apt-get install chromium)."
[ -d /usr/share/datasets/fashion-mnist ] || echo "note: Debian's dataset-fashion-mnist is missing, so the full Fashion-MNIST test is skipped."
# Lint first: a finding fails the run before the 20 minutes of tests (fix: .venv/bin/ruff format .;
# .venv/bin/ruff check --fix .).
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
exec .venv/bin/python -m pytest "$@"
