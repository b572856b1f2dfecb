#!/usr/bin/env bash
# Creates .venv and installs the pinned requirements, once: later calls only check a
# hash of the requirement files and return at once. Sourced by run.sh and test.sh.
#   usage: scripts/setup_env.sh [requirements-file]   (default requirements.txt)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
req=${1:-requirements.txt}
cd "$root"

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
if [ -z "$python" ]; then
  echo "CNN Lab needs Python 3.11 or 3.12 (python3 was not found on PATH)." >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))'; then
  echo "CNN Lab needs Python 3.11 or 3.12; $python is $("$python" --version 2>&1)." >&2
  echo "Set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $("$python" --version 2>&1) ..."
  "$python" -m venv .venv
fi

# The stamp holds a hash of every requirement file involved, so an edited pin reinstalls.
stamp_of() { cat requirements.txt "$1" | sha256sum | cut -d' ' -f1; }
want=$(stamp_of "$req")
stamp=.venv/.cnn-lab-installed-$(basename "$req")
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if [ -e "$stamp" ]; then
    echo "Updating .venv: $req changed since the last install ..."
  else
    echo "Installing $req into .venv (once; TensorFlow is a few hundred MB) ..."
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
  # requirements-dev.txt includes requirements.txt: the app's own install is done too, so
  # ./run.sh after ./test.sh does not claim to install again.
  if [ "$req" != requirements.txt ] && grep -qx -- '-r requirements.txt' "$req"; then
    stamp_of requirements.txt > .venv/.cnn-lab-installed-requirements.txt
  fi
fi
