#!/usr/bin/env bash
# Runs a command with LIBTORCH pointing at the libtorch to build against
# (the user's own if set, else the project venv's torch).
set -euo pipefail
LIBTORCH=$("$(dirname "$0")/libtorch-env.sh")
export LIBTORCH
exec "$@"
