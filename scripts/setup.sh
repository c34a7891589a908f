#!/usr/bin/env bash
# Installs what the build and the tests need, once: a project-local venv with
# torch 2.11.0 (the libtorch tch 0.24 links against; skipped when the user sets
# LIBTORCH), numpy and safetensors (for the Python interop tests), torchattacks and
# scipy (the peer attacks of the AutoAttack cross-check), and MNIST.
# A second run checks and returns in seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=.venv
py="$venv/bin/python"
torch_version=2.11.0
# The peer implementation of APGD, APGD-T and Square (issue 14.6). Installed without
# its dependencies: it asks for torchvision, tqdm and requests, which it never imports
# for these attacks, and pip would otherwise be free to swap the pinned torch. What
# its import does need beside torch and numpy is scipy.
torchattacks_version=3.5.1
scipy_version=1.16.3

have() { "$py" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('$1').startswith('$2') else 1)" 2>/dev/null; }

if [ ! -x "$py" ]; then
  echo "setup: creating $venv" >&2
  python3 -m venv "$venv"
fi
want=()
have numpy "" || want+=(numpy)
have safetensors "" || want+=(safetensors)
if [ -z "${LIBTORCH:-}" ]; then
  have torch "$torch_version" || want+=("torch==$torch_version")
else
  echo "setup: using LIBTORCH=$LIBTORCH" >&2
fi
if [ ${#want[@]} -gt 0 ]; then
  echo "setup: pip install ${want[*]} (torch brings ~4.6 GB of CUDA packages; a GPU needs them)" >&2
  "$venv/bin/pip" install --disable-pip-version-check -q "${want[@]}"
fi
peers=()
have torchattacks "$torchattacks_version" || peers+=("torchattacks==$torchattacks_version")
have scipy "$scipy_version" || peers+=("scipy==$scipy_version")
if [ ${#peers[@]} -gt 0 ]; then
  echo "setup: pip install --no-deps ${peers[*]} (the AutoAttack cross-check's peer)" >&2
  "$venv/bin/pip" install --disable-pip-version-check -q --no-deps "${peers[@]}"
fi

scripts/fetch-mnist.sh data/mnist
echo "setup: ready (LIBTORCH=$(scripts/libtorch-env.sh))" >&2
