#!/usr/bin/env bash
# Starts CNN Lab on http://localhost:8501 (first run installs .venv; later runs start at once).
# Extra arguments go to `streamlit run` (through scripts/serve.py), e.g. ./run.sh --server.port 8600
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh requirements.txt
# The port the server will listen on: the last --server.port given wins, as in Streamlit.
port=8501
args=("$@")
for i in "${!args[@]}"; do
  case "${args[$i]}" in
    --server.port=*) port=${args[$i]#--server.port=} ;;
    --server.port) port=${args[$((i + 1))]:-$port} ;;
  esac
done
echo "CNN Lab: open http://localhost:$port in your browser (Ctrl+C stops the server)."
exec .venv/bin/python scripts/serve.py --server.port 8501 "$@"
