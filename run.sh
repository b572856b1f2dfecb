#!/usr/bin/env bash
# Starts CNN Lab on http://localhost:8501 (first run installs .venv; later runs start at once).
# Extra arguments go to `streamlit run`, e.g. ./run.sh --server.port 8600
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh requirements.txt
echo "CNN Lab: open http://localhost:8501 in your browser (Ctrl+C stops the server)."
exec .venv/bin/python -m streamlit run app.py --server.port 8501 "$@"
