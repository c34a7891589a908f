#!/usr/bin/env bash
# `make bench`: ms/step of the trainer against PyTorch eager training the same
# model the same way, in the same run, on the same machine; prints a Markdown table.
# Environment: ARTIFACTS (default artifacts), STEPS (300), BATCH (32), THREADS (2),
# DEVICE (cpu), REPEATS (2; the best of them is kept, as noise only slows).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
art=${ARTIFACTS:-artifacts}
steps=${STEPS:-300}
batch=${BATCH:-32}
threads=${THREADS:-2}
device=${DEVICE:-cpu}
repeats=${REPEATS:-2}
mnist="$art/data/mnist.safetensors"
[ -f "$mnist" ] || { echo "bench: $mnist missing (run make $mnist)" >&2; exit 1; }
tunables='glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184'
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/data"
ln -s "$(realpath "$mnist")" "$scratch/data/mnist.safetensors"

pytorch() { .venv/bin/python scripts/bench_pytorch.py "$mnist" --steps "$steps" --batch "$batch" --threads "$threads" --device "$device"; }
trainer() {
  rm -rf "$scratch/seed-00"
  target/release/trainer train --artifacts "$scratch" --seed 0 --variant base --epochs 1 --steps "$steps" \
    --batch "$batch" --threads "$threads" --device "$device" --val-limit "$batch" >/dev/null 2>&1
  .venv/bin/python -c "import json,sys; print('%.3f' % json.load(open(sys.argv[1]))['ms_per_step'])" "$scratch/seed-00/models/base.json"
}
best() { local b=""; for _ in $(seq "$repeats"); do v=$("$@"); if [ -z "$b" ] || awk "BEGIN{exit !($v < $b)}"; then b=$v; fi; done; echo "$b"; }

declare -A ms
# Interleaved so that machine noise hits both sides alike.
ms[pt]=$(GLIBC_TUNABLES= best pytorch)
ms[tch]=$(GLIBC_TUNABLES= best trainer)
ms[pt_t]=$(GLIBC_TUNABLES=$tunables best pytorch)
ms[tch_t]=$(GLIBC_TUNABLES=$tunables best trainer)

row() { awk -v n="$1" -v m="$2" -v b="$batch" -v r="$3" 'BEGIN{printf "| %s | %.2f | %.0f | %s |\n", n, m, 1000*b/m, r}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }
echo "device $device, batch $batch, $threads threads, $steps steps (best of $repeats), $(date -u +%F), $(nproc) cores"
echo
echo "| implementation | ms/step | samples/s | vs PyTorch eager (same malloc) |"
echo "|---|---|---|---|"
row "PyTorch eager" "${ms[pt]}" "1.00x"
row "trainer (tch)" "${ms[tch]}" "$(ratio "${ms[tch]}" "${ms[pt]}")"
row "PyTorch eager + GLIBC_TUNABLES" "${ms[pt_t]}" "1.00x"
row "trainer (tch) + GLIBC_TUNABLES" "${ms[tch_t]}" "$(ratio "${ms[tch_t]}" "${ms[pt_t]}")"
