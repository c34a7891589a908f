#!/usr/bin/env bash
# Prints the LIBTORCH to build against: the user's own if set, else the project
# venv's torch folder, found without importing torch.
set -euo pipefail
if [ -n "${LIBTORCH:-}" ]; then echo "$LIBTORCH"; exit 0; fi
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/.venv/bin/python" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torch").origin))'
