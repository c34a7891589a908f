#!/usr/bin/env bash
# `make bench`: training speed of the trainer against PyTorch eager training the same
# model the same way, in the same run, on the same machine; prints Markdown tables.
#
# Rows: PyTorch eager (one model), `trainer train` (one model, the slow path),
# `trainer train-set` (the 8 models of a set in lockstep, the fast path; samples/s
# counts every model's samples) and, with WIDE_SETS > 0, `train-set --sets
# WIDE_SETS` (8 x WIDE_SETS models in one stack). ms/step is per model: a lockstep
# step's time divided by its models. With STAGES=1, also the wall time of each stage
# of one full set (train-set, adversary-gen, evaluator) at STAGE_EPOCHS x STAGE_STEPS.
#
# Environment: ARTIFACTS (artifacts), DEVICE (cpu; cuda on a GPU), STEPS (300 on
# CPU, 2000 on CUDA: warm-up and cuDNN autotuning are inside the trainer's time),
# BATCH (32), THREADS (2), REPEATS (2; the best is kept, as noise only slows),
# CONVS (train-set convolution methods to compare: auto on CPU, "grouped im2col" on
# CUDA), WIDE_SETS (0 on CPU, 4 on CUDA), STAGES (0), STAGE_EPOCHS (1),
# STAGE_STEPS (STEPS), STAGE_N (N_ADV of the stage run, 1000), PYTHON (.venv/bin/python
# when present, else python3: the interpreter with torch for the reference), BIN
# (target/release: where the tools are).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
art=${ARTIFACTS:-artifacts}
device=${DEVICE:-cpu}
on_gpu=0
[[ $device == cuda* ]] && on_gpu=1
steps=${STEPS:-$([ $on_gpu = 1 ] && echo 2000 || echo 300)}
batch=${BATCH:-32}
threads=${THREADS:-2}
repeats=${REPEATS:-2}
convs=${CONVS:-$([ $on_gpu = 1 ] && echo "grouped im2col" || echo auto)}
wide=${WIDE_SETS:-$([ $on_gpu = 1 ] && echo 4 || echo 0)}
stages=${STAGES:-0}
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
bin=${BIN:-target/release}
# Binaries built elsewhere (carried to a GPU machine) find libtorch through the
# reference interpreter's torch, which is the same 2.11 build.
if torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null); then
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
mnist="$art/data/mnist.safetensors"
[ -f "$mnist" ] || { echo "bench: $mnist missing (run make $mnist)" >&2; exit 1; }
tunables='glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184'
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/data"
ln -s "$(realpath "$mnist")" "$scratch/data/mnist.safetensors"
log="$scratch/log"

json_field() { "$python" -c "import json,sys; print('%.3f' % json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
# Runs a trainer command into the scratch root; on failure shows its log and stops.
run_trainer() {
  rm -rf "$scratch"/seed-*
  if ! "$bin/trainer" "$@" --artifacts "$scratch" --epochs 1 --steps "$steps" --batch "$batch" \
      --threads "$threads" --device "$device" --val-limit "$batch" >"$log" 2>&1; then
    echo "bench: trainer $* failed:" >&2; tail -20 "$log" >&2; exit 1
  fi
}
pytorch() { "$python" scripts/bench_pytorch.py "$mnist" --steps "$steps" --batch "$batch" --threads "$threads" --device "$device"; }
single() { run_trainer train --seed 0 --variant base; json_field "$scratch/seed-00/models/base.json" ms_per_step; }
# $1: convolution method, $2: sets in the stack.
stacked() { run_trainer train-set --seed 0 --sets "$2" --convs "$1"; json_field "$scratch/seed-00/models/base.json" ms_per_step; }
best() { local b="" v; for _ in $(seq "$repeats"); do v=$("$@") || exit 1; if [ -z "$b" ] || awk "BEGIN{exit !($v < $b)}"; then b=$v; fi; done; echo "$b"; }

row() { # name, models, ms/step per model, reference ms/step
  awk -v n="$1" -v k="$2" -v m="$3" -v r="$4" -v b="$batch" \
    'BEGIN{printf "| %s | %d | %.3f | %.0f | %.2fx | %.2fx |\n", n, k, m, 1000*b/m, m/r, r/m}'
}
header() {
  echo "| implementation | models | ms/step per model | samples/s (all models) | ms/step vs PyTorch eager | samples/s vs PyTorch eager |"
  echo "|---|---|---|---|---|---|"
}

echo "device $device, batch $batch, $threads threads, $steps steps (best of $repeats), $(date -u +%F), $(nproc) cores"
echo
# Interleaved so that machine noise hits both sides alike.
malloc_modes=("plain")
[ $on_gpu = 0 ] && malloc_modes+=("tunables")
for mode in "${malloc_modes[@]}"; do
  if [ "$mode" = tunables ]; then export GLIBC_TUNABLES=$tunables; label=" + GLIBC_TUNABLES"; else export GLIBC_TUNABLES=; label=""; fi
  pt=$(best pytorch)
  tch=$(best single)
  header
  row "PyTorch eager$label" 1 "$pt" "$pt"
  row "trainer train$label" 1 "$tch" "$pt"
  for c in $convs; do
    ms=$(best stacked "$c" 1)
    row "trainer train-set, convs $c$label" 8 "$ms" "$pt"
  done
  if [ "$wide" -gt 0 ]; then
    for c in $convs; do
      ms=$(best stacked "$c" "$wide")
      row "trainer train-set --sets $wide, convs $c$label" $((8 * wide)) "$ms" "$pt"
    done
  fi
  echo
done

if [ "$stages" = 1 ]; then
  # One full set through the pipeline, each stage timed on its own.
  e=${STAGE_EPOCHS:-1}; s=${STAGE_STEPS:-$steps}; n=${STAGE_N:-1000}
  rm -rf "$scratch"/seed-*
  stage() { local t0; t0=$(date +%s.%N); if ! "$@" >"$log" 2>&1; then echo "bench: $1 failed:" >&2; tail -20 "$log" >&2; exit 1; fi
            awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
  t_train=$(stage "$bin/trainer" train-set --artifacts "$scratch" --seed 0 --epochs "$e" --steps "$s" --batch "$batch" \
    --threads "$threads" --device "$device")
  t_attack=$(stage "$bin/adversary-gen" fgsm --artifacts "$scratch" --seed 0 --n "$n" --device "$device")
  t_eval=$(stage "$bin/evaluator" fgsm --artifacts "$scratch" --seed 0 --device "$device")
  echo "One set, $e epoch(s) x $s steps, $n adversarial images, device $device:"
  echo
  echo "| stage | wall s |"
  echo "|---|---|"
  echo "| trainer train-set (8 models, incl. validation and clean scoring) | $t_train |"
  echo "| adversary-gen | $t_attack |"
  echo "| evaluator | $t_eval |"
fi
