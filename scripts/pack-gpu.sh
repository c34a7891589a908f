#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine that has no Rust:
#   DEST/tools.tar.xz   the five tools, stripped (libtorch is not in them: it comes
#                       from the GPU machine's python torch at run time)
#   DEST/mnist/*.gz     the four MNIST IDX files, gzipped
#   DEST/make           this machine's GNU make, used there only if it has none
#   DEST/SHA256SUMS
# and checks that the bundle and the repository files that travel with it (git's
# tracked files) fit the GPU machine's 64 MiB.
#
# usage: scripts/pack-gpu.sh [DEST]   (default target/gpu-bundle; `make gpu-pack`)
# Environment: BIN (target/release), MNIST_DIR (data/mnist), LIMIT_MIB (64).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
dest=${1:-target/gpu-bundle}
bin=${BIN:-target/release}
mnist=${MNIST_DIR:-data/mnist}
limit_mib=${LIMIT_MIB:-64}
tools=(dataset-prep trainer adversary-gen evaluator report)
idx=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
die() { echo "pack-gpu: $*" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage" "$dest.tmp"' EXIT
rm -rf "$dest.tmp"
mkdir -p "$dest.tmp/mnist" "$stage/tools"
for t in "${tools[@]}"; do
  [ -x "$bin/$t" ] || die "$bin/$t missing: build first (make build) or set BIN"
  strip -o "$stage/tools/$t" "$bin/$t"
done
tar -C "$stage/tools" -cJf "$dest.tmp/tools.tar.xz" "${tools[@]}"
for f in "${idx[@]}"; do
  if [ -f "$mnist/$f" ] && [ "$dest/mnist/$f.gz" -nt "$mnist/$f" ]; then
    cp -p "$dest/mnist/$f.gz" "$dest.tmp/mnist/"  # packed before from the same file
  elif [ -f "$mnist/$f" ]; then gzip -9nc "$mnist/$f" >"$dest.tmp/mnist/$f.gz"
  elif [ -f "$mnist/$f.gz" ]; then cp "$mnist/$f.gz" "$dest.tmp/mnist/"
  else die "$mnist/$f (or .gz) missing: run scripts/fetch-mnist.sh $mnist"; fi
done
make_bin=$(command -v make) || die "no make on PATH to carry"
cp "$make_bin" "$dest.tmp/make"
(cd "$dest.tmp" && sha256sum tools.tar.xz make mnist/* >SHA256SUMS)

bundle=$(du -sb "$dest.tmp" | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((bundle + tree))
mib() { awk -v b="$1" 'BEGIN{printf "%.1f MiB", b / 1048576}'; }
echo "pack-gpu: bundle $(mib "$bundle") (tools $(mib "$(stat -c %s "$dest.tmp/tools.tar.xz")"), MNIST $(mib "$(du -cb "$dest.tmp"/mnist/* | tail -1 | cut -f1)")) + tracked files $(mib "$tree") = $(mib "$total") of $limit_mib MiB"
[ "$total" -le $((limit_mib * 1048576)) ] || die "too big: $(mib "$total") > $limit_mib MiB"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "pack-gpu: wrote $dest"
