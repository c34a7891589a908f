#!/usr/bin/env bash
# The GPU check of issue 11 (item 6): one prepared script that proves, on a GPU
# machine without Rust, that the tools run there, train right and train fast.
#
# usage: scripts/gpu-check.sh OUTDIR
#
# It runs from the bundle of scripts/pack-gpu.sh (`make gpu-pack`: stripped tools,
# gzipped MNIST; carry target/gpu-bundle) or from BIN, with libtorch from python3's
# torch, in at most GPU_CHECK_SECONDS (470 s: one H200's 8 minutes less a margin),
# every step under `timeout`. It writes OUTDIR/report.md (every table),
# OUTDIR/summary.md (printed last) and OUTDIR/logs.tar.gz (one log per step);
# scratch artifacts go to GPU_CHECK_WORK (a fresh temporary folder). Steps:
#   env      device, driver, torch/CUDA/cuDNN versions, TF32 state, ldd of each tool
#   f64      train-set vs train, float64, 2 models (base, usm), 300 steps: max
#            relative difference over every checkpoint tensor
#   epoch    one float32 epoch of a full set (train-set, 8 models): clean accuracy
#            and null rate per model
#   tf32     FGSM thresholds of that set (attack with TF32 off), scored with TF32 on
#            and off: baseline threshold images that flip back to their label
#   speed    PyTorch eager (scripts/bench_pytorch.py), trainer train, train-set at
#            K = 8 and K = 240: ms per model-step, samples/s, ratio to eager,
#            projected time of the study's 240 models
#   make     `make all SEEDS=30 NO_BUILD=1 BIN=...` stage by stage in what time is
#            left: wall per stage, or how far it got and the projected total
#
# GPU_CHECK_TINY=1 is the CPU dry run (`make check-gpu-script`, part of `make test`):
# every step at toy sizes on the CPU (2 sets, a truncated test set), and what needs a
# GPU says "no CUDA device: ... skipped". Exit status 1 if a step failed.
#
# Environment: BIN (tools folder; default: unpack GPU_BUNDLE's), GPU_BUNDLE
# (target/gpu-bundle), MNIST_DIR (GPU_BUNDLE/mnist, else data/mnist), PYTHON
# (.venv/bin/python when present, else python3), DEVICE (cuda, or cpu without one),
# GPU_CHECK_SECONDS (470), GPU_CHECK_TINY (0), GPU_CHECK_WORK.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/gpu-check.sh OUTDIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p "$1" || exit 2
out=$(cd "$1" && pwd)
t_start=$(date +%s)
budget=${GPU_CHECK_SECONDS:-470}
reserve=15 # seconds kept for the summary
tiny=${GPU_CHECK_TINY:-0}
work=${GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu-check.XXXXXX)}
bundle=${GPU_BUNDLE:-target/gpu-bundle}
python=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
logs="$work/logs"
report="$out/report.md"
steps_table="$work/steps.md"
facts="$work/facts.md" # lines of the summary, gathered along the way
mkdir -p "$logs" "$work"
: >"$report"
: >"$facts"
printf '| step | status | wall s |\n|---|---|---|\n' >"$steps_table"
failed=0

say() { echo "gpu-check: $*" >&2; }
fact() { echo "- $*" >>"$facts"; say "$*"; }
md() { echo "$*" >>"$report"; }
elapsed() { echo $(($(date +%s) - t_start)); }
left() { echo $((budget - $(elapsed) - reserve)); }
# A JSON field (dotted path) of a file, for the tables.
jget() { "$python" -c 'import json,sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k]
print(v)' "$1" "$2" 2>/dev/null; }

# step NAME SECONDS CMD...: CMD (a tool or one of the functions below) limited to
# SECONDS and to what the budget leaves, output in logs/NAME.log; its status and wall
# go in the steps table. The limit is a watchdog on CMD's process group (job control
# gives every step its own): GNU timeout cannot run shell functions.
set -m
step() {
  local name=$1 limit=$2 rc status t0 wall pid watch spare
  shift 2
  spare=$(left)
  [ "$limit" -gt "$spare" ] && limit=$spare
  if [ "$limit" -lt 3 ]; then
    echo "| $name | skipped: out of time | 0 |" >>"$steps_table"
    say "$name: skipped, out of time"
    failed=1
    return 124
  fi
  t0=$(date +%s.%N)
  ("$@") >"$logs/$name.log" 2>&1 </dev/null &
  pid=$!
  (sleep "$limit"; kill -TERM -- "-$pid"; sleep 5; kill -KILL -- "-$pid") >/dev/null 2>&1 &
  watch=$!
  wait "$pid"
  rc=$?
  kill -- "-$watch" 2>/dev/null
  wait "$watch" 2>/dev/null
  wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
  case $rc in
    0) status=ok ;;
    143 | 137) status="timed out after $limit s" ;;
    *) status="failed (exit $rc)" ;;
  esac
  echo "| $name | $status | $wall |" >>"$steps_table"
  say "$name: $status, $wall s"
  if [ $rc -ne 0 ]; then
    failed=1
    tail -5 "$logs/$name.log" | sed 's/^/    /' >&2
  fi
  return $rc
}
# skip NAME WHY: a step that cannot run here.
skip() {
  echo "| $1 | $2 | 0 |" >>"$steps_table"
  say "$1: $2"
}

# --- tools, libtorch, data ---------------------------------------------------------
if [ -z "${BIN:-}" ]; then
  if [ -f "$bundle/tools.tar.xz" ]; then
    BIN="$work/bin"
    mkdir -p "$BIN"
    tar -C "$BIN" -xJf "$bundle/tools.tar.xz" || { say "cannot unpack $bundle/tools.tar.xz"; exit 1; }
  else
    BIN=target/release
  fi
fi
BIN=$(cd "$BIN" && pwd)
mnist_dir=${MNIST_DIR:-$([ -d "$bundle/mnist" ] && echo "$bundle/mnist" || echo data/mnist)}
make_cmd=$(command -v make || echo "$root/$bundle/make")
torch_lib=$("$python" -c 'import importlib.util as u, os; s = u.find_spec("torch"); print(os.path.join(os.path.dirname(s.origin), "lib"))' 2>/dev/null)
[ -n "$torch_lib" ] && export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184
cuda=$("$python" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
if [ "$cuda" = 1 ]; then device=${DEVICE:-cuda}; else device=${DEVICE:-cpu}; fi
nocuda() { say "no CUDA device: $*"; echo "- no CUDA device: $*" >>"$facts"; }

if [ "$tiny" = 1 ]; then
  # Toy sizes: the point is that every step runs, not its numbers.
  f64_args=(--epochs 2 --steps 10 --batch 2 --val-limit 20)
  epoch_args=(--epochs 1 --steps 20 --batch 8 --val-limit 50)
  n_adv=20
  speed_steps=20 wide_steps=5 wide_sets=2 speed_batch=8 warmup=2
  eval_args=(--eps-step 0.1)
  threads=1
  make_epochs=1
  make_vars=(SEEDS=2 EPOCHS=1 STEPS=10 BATCH=8 N_ADV=10 THREADS=1 "TRAIN_FLAGS=--val-limit 20"
    "TOY_FLAGS=--epochs 1 --steps 20 --eval-samples 1000")
else
  f64_args=(--epochs 2 --steps 150 --batch 32 --val-limit 1000)
  epoch_args=(--epochs 1 --steps 1875 --batch 32)
  n_adv=1000
  speed_steps=2000 wide_steps=300 wide_sets=30 speed_batch=32 warmup=20
  eval_args=()
  threads=4
  make_epochs=20
  make_vars=(SEEDS=30)
fi
[ "$tiny" = 1 ] && mode="CPU dry run (GPU_CHECK_TINY=1)" || mode="full"
md "# GPU check, $(date -u '+%F %H:%M UTC'), $mode"
md ""
md "Command: \`scripts/gpu-check.sh $1\`; tools from $BIN; device $device."
md ""

# --- env -----------------------------------------------------------------------------
env_check() {
  echo "## environment"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv
  else
    echo "nvidia-smi: not on this machine"
  fi
  "$python" - <<'PY'
import os, torch
print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| cuDNN", torch.backends.cudnn.version())
print("cuda available:", torch.cuda.is_available(), "| devices:", torch.cuda.device_count())
for i in range(torch.cuda.device_count()):
    print(f"  cuda:{i}", torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i))
print("PyTorch TF32 defaults: matmul.allow_tf32 =", torch.backends.cuda.matmul.allow_tf32,
      "| cudnn.allow_tf32 =", torch.backends.cudnn.allow_tf32,
      "| NVIDIA_TF32_OVERRIDE =", os.environ.get("NVIDIA_TF32_OVERRIDE", "(unset)"))
PY
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "make: $make_cmd"
  local bad=0
  for t in dataset-prep trainer adversary-gen evaluator report; do
    echo "### ldd $t"
    ldd "$BIN/$t" | tee "$work/ldd-$t.txt"
    grep -q 'not found' "$work/ldd-$t.txt" && bad=1
  done
  return $bad
}
if step env 60 env_check; then
  fact "ldd: every tool finds every library (no \"not found\")"
else
  fact "ldd or environment: FAILED (logs/env.log)"
fi
{ md "## Environment"; md ""; md '```'; cat "$logs/env.log" | grep -v '^	' | head -40 >>"$report"; md '```'; md ""; }
grep -E '^torch|^[0-9], |^  cuda' "$logs/env.log" | head -4 | while read -r l; do fact "$l"; done
[ "$cuda" = 1 ] || nocuda "torch sees no GPU; GPU figures below are CPU stand-ins"

# --- data ----------------------------------------------------------------------------
data_root="$work/data-root"
prepare() {
  "$BIN/dataset-prep" --mnist-dir "$mnist_dir" --out "$data_root" || return 1
  if [ "$tiny" = 1 ]; then
    # 500 test images: clean scoring of every model would dominate a toy run.
    "$python" - "$data_root/data/mnist.safetensors" <<'PY'
import sys
from safetensors.numpy import load_file, save_file
d = load_file(sys.argv[1])
d["test_images"], d["test_labels"] = d["test_images"][:500].copy(), d["test_labels"][:500].copy()
save_file(d, sys.argv[1])
PY
  fi
}
step data 60 prepare || { say "no data, nothing else can run"; }
# fresh_root NAME: an empty artifacts root holding the prepared data.
fresh_root() {
  rm -rf "${work:?}/$1"
  mkdir -p "$work/$1/data"
  cp "$data_root"/data/* "$work/$1/data/"
  echo "$work/$1"
}
trainer() { "$BIN/trainer" "$@" --device "$device" --threads "$threads"; }

# --- f64: stacked vs single ----------------------------------------------------------
f64_check() {
  local fast slow
  fast=$(fresh_root f64-stacked)
  slow=$(fresh_root f64-single)
  trainer train-set --artifacts "$fast" --seed 4 --variants base,usm --precision f64 "${f64_args[@]}" || return 1
  for v in base usm; do
    trainer train --artifacts "$slow" --seed 4 --variant "$v" --precision f64 "${f64_args[@]}" || return 1
  done
  "$python" - "$fast/seed-04/models" "$slow/seed-04/models" <<'PY'
import sys
import numpy as np
from safetensors.numpy import load_file
worst = 0.0
for v in ["base", "usm"]:
    for f in [f"{v}.safetensors", f"{v}.last.safetensors"]:
        a, b = load_file(f"{sys.argv[1]}/{f}"), load_file(f"{sys.argv[2]}/{f}")
        assert a.keys() == b.keys(), f
        for k in a:
            d = float(np.abs(a[k] - b[k]).max() / max(np.abs(b[k]).max(), 1e-300))
            worst = max(worst, d)
            print(f"{f} {k} {a[k].dtype} max rel diff {d:.3e}")
print(f"MAXREL {worst:.3e}")
sys.exit(0 if worst < 1e-9 else 3)
PY
}
if step f64 120 f64_check; then verdict=ok; else verdict=FAILED; fi
maxrel=$(grep -o 'MAXREL .*' "$logs/f64.log" | cut -d' ' -f2)
fact "f64 stacked (train-set) vs single (train), base+usm, ${f64_args[*]}: max relative difference over all checkpoint tensors ${maxrel:-n/a} (< 1e-9 required): $verdict"
md "## float64: stacked vs single"
md ""
md "\`train-set --variants base,usm --precision f64 ${f64_args[*]}\` against \`train\` of each: max relative difference over every tensor of both checkpoints: **${maxrel:-n/a}** ($verdict)."
md ""

# --- epoch: one float32 epoch of a full set ------------------------------------------
set_root=$(fresh_root set)
step epoch 180 trainer train-set --artifacts "$set_root" --seed 0 "${epoch_args[@]}"
md "## One float32 epoch of set 0 (\`train-set ${epoch_args[*]}\`)"
md ""
md "| model | clean accuracy % | clean null rate % | ms/step per model |"
md "|---|---|---|---|"
accs=()
for v in base u s m us um sm usm; do
  j="$set_root/seed-00/models/$v.json"
  if [ -f "$j" ]; then
    a=$(awk -v x="$(jget "$j" clean_test_accuracy)" 'BEGIN{printf "%.2f", 100 * x}')
    n=$(awk -v x="$(jget "$j" clean_null_rate)" 'BEGIN{printf "%.2f", 100 * x}')
    md "| $v | $a | $n | $(jget "$j" ms_per_step) |"
    accs+=("$v $a/$n")
  fi
done
md ""
fact "one f32 epoch of set 0 (clean accuracy/null rate %): ${accs[*]:-none}"
if [ -f "$set_root/seed-00/models/base.json" ]; then
  fact "trainer's record: device $(jget "$set_root/seed-00/models/base.json" device); $(grep -o '"[a-z_]*tf32[a-z_]*": *[^,}]*' "$set_root/seed-00/models/base.json" | head -2 | tr '\n' ' ')"
fi

# --- tf32: FGSM thresholds scored with TF32 on and off ------------------------------
# The attack runs with TF32 off, so scoring with it off must find no flip-back; TF32
# on shows how many threshold images (each within 1e-3 of the boundary) flip back.
if "$BIN/evaluator" fgsm --help | grep -q -- '--tf32'; then
  tf32_on=(--tf32 on) tf32_off=(--tf32 off) tf32_env=()
  tf32_how="--tf32 on|off"
else
  tf32_on=() tf32_off=() tf32_env=(NVIDIA_TF32_OVERRIDE=0)
  tf32_how="tools without --tf32: off = NVIDIA_TF32_OVERRIDE=0, on = the default"
fi
tf32_check() {
  env "${tf32_env[@]}" "$BIN/adversary-gen" fgsm --artifacts "$set_root" --seed 0 --n "$n_adv" \
    --device "$device" --threads "$threads" "${tf32_off[@]}" || return 1
  for mode in on off; do
    local flags=() envs=()
    if [ $mode = on ]; then flags=("${tf32_on[@]}"); else flags=("${tf32_off[@]}") envs=("${tf32_env[@]}"); fi
    env "${envs[@]}" "$BIN/evaluator" fgsm --artifacts "$set_root" --seed 0 --device "$device" \
      --threads "$threads" --baseline-tolerance 1 "${eval_args[@]}" "${flags[@]}" || return 1
    rm -rf "$work/eval-tf32-$mode"
    cp -a "$set_root/seed-00/eval" "$work/eval-tf32-$mode"
  done
  "$python" - "$work/eval-tf32-on" "$work/eval-tf32-off" <<'PY'
import json, sys
import numpy as np
on, off = (json.load(open(f"{d}/meta.json")) for d in sys.argv[1:])
pon, poff = (np.load(f"{d}/threshold_predictions.npy") for d in sys.argv[1:])
n = on["n"]
print(f"FLIPS on={on['baseline_threshold']['correct']} off={off['baseline_threshold']['correct']} n={n} "
      f"differ_baseline={int((pon[0, :, 0] != poff[0, :, 0]).sum())} "
      f"differ_all={int((pon[:, :, 0] != poff[:, :, 0]).sum())}/{pon.shape[0] * pon.shape[1]}")
PY
}
if [ -f "$set_root/seed-00/models/base.json" ]; then
  step tf32 120 tf32_check
  flips=$(grep -o 'FLIPS .*' "$logs/tf32.log" | cut -d' ' -f2-)
  [ "$cuda" = 1 ] || nocuda "TF32 does not exist on the CPU: the on/off scoring below only exercises the step"
  fact "FGSM thresholds (attack TF32 off, $n_adv images; $tf32_how): baseline threshold images flipped back to their label: ${flips:-n/a}"
  md "## FGSM thresholds scored with TF32 on and off"
  md ""
  md "Attack with TF32 off, N = $n_adv; scored by \`evaluator fgsm\` both ways ($tf32_how). on/off: baseline threshold images classified correctly again (flipped back); differ: threshold images whose predicted class changes between the two scorings (baseline; all 8 models): ${flips:-n/a}."
  md ""
else
  skip tf32 "skipped: no trained set"
fi

# --- speed ---------------------------------------------------------------------------
speed_root=$(fresh_root speed)
# ms per model-step of a trainer run (its JSON's ms_per_step).
trainer_speed() {
  rm -rf "$speed_root"/seed-*
  trainer "$@" --artifacts "$speed_root" --epochs 1 --batch "$speed_batch" --val-limit "$speed_batch" || return 1
  jget "$speed_root/seed-00/models/base.json" ms_per_step >"$work/ms"
}
pytorch_speed() {
  "$python" scripts/bench_pytorch.py "$speed_root/data/mnist.safetensors" --steps "$speed_steps" \
    --batch "$speed_batch" --warmup "$warmup" --threads "$threads" --device "$device" >"$work/ms"
}
declare -A ms
speed_row() { # name models cmd...
  local name=$1 k=$2
  shift 2
  rm -f "$work/ms"
  if step "speed-$name" 150 "$@" && [ -s "$work/ms" ]; then ms[$name]=$(tail -1 "$work/ms"); fi
}
speed_row eager 1 pytorch_speed
speed_row single 1 trainer_speed train --seed 0 --variant base --steps "$speed_steps"
speed_row k8 8 trainer_speed train-set --seed 0 --sets 1 --steps "$speed_steps"
wide_k=$((8 * wide_sets))
[ "$cuda" = 1 ] || nocuda "train-set K=240 skipped; K=$wide_k instead"
speed_row wide "$wide_k" trainer_speed train-set --seed 0 --sets "$wide_sets" --steps "$wide_steps"
md "## Training speed (batch $speed_batch, device $device)"
md ""
md "| implementation | models | steps | ms/step per model | samples/s (all models) | samples/s vs PyTorch eager | projected 240 models x 37,500 steps |"
md "|---|---|---|---|---|---|---|"
ref=${ms[eager]:-}
for row in "eager:1:$speed_steps:PyTorch eager, one model at a time" "single:1:$speed_steps:trainer train, one model at a time" \
  "k8:8:$speed_steps:trainer train-set, K = 8" "wide:$wide_k:$wide_steps:trainer train-set, K = $wide_k"; do
  IFS=: read -r key k s name <<<"$row"
  m=${ms[$key]:-}
  if [ -z "$m" ]; then md "| $name | $k | $s | failed | | | |"; continue; fi
  line=$(awk -v m="$m" -v r="$ref" -v k="$k" -v b="$speed_batch" 'BEGIN{
    sps = 1000 * b / m; proj = m * 240 * 37500 / 1000
    ratio = (r == "") ? "n/a" : sprintf("%.2fx", r / m)
    printf "%.3f | %.0f | %s | %.1f min", m, sps, ratio, proj / 60 }')
  md "| $name | $k | $s | $line |"
  fact "speed, $name: $line (ms/model-step | samples/s | vs eager | projected 240 models)"
done
md ""
if [ -n "$ref" ] && [ -n "${ms[wide]:-}" ]; then
  ratio=$(awk -v r="$ref" -v m="${ms[wide]}" 'BEGIN{printf "%.2f", r / m}')
  if awk -v x="$ratio" 'BEGIN{exit !(x >= 3)}'; then met=met; else met=missed; fi
  [ "$cuda" = 1 ] || met="not judged (CPU)"
  fact "target: train-set samples/s >= 3x PyTorch eager: ${ratio}x at K=$wide_k, $met"
fi

# --- make all SEEDS=30 ---------------------------------------------------------------
make_root=$(fresh_root make)
make_all() {
  local stage
  for stage in models attacks eval report toy; do
    local t0
    t0=$(date +%s.%N)
    echo "=== make $stage $(date +%s)"
    "$make_cmd" -C "$root" --no-print-directory "$stage" NO_BUILD=1 BIN="$BIN" ARTIFACTS="$make_root" \
      DEVICE="$device" "${make_vars[@]}" || return 1
    awk -v s="$stage" -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "STAGE %s %.1f\n", s, b - a}'
  done
}
step make "$(left)" make_all
md "## \`make all ${make_vars[*]} NO_BUILD=1 BIN=...\` (device $device)"
md ""
md "| stage | wall s |"
md "|---|---|"
total=0
while read -r _ stage s; do
  md "| $stage | $s |"
  total=$(awk -v a="$total" -v b="$s" 'BEGIN{print a + b}')
done < <(grep '^STAGE ' "$logs/make.log")
md ""
done_stages=$(grep -c '^STAGE ' "$logs/make.log")
models=$(find "$make_root" -path '*/models/*.json' | wc -l)
if [ "$done_stages" = 5 ]; then
  fact "make all ${make_vars[*]}: finished in $total s (target: 600 s at paper settings on one H200)"
else
  # How far it got: finished stages, models written, and the trainer's last epoch.
  epochs=$(grep -o 'epoch [0-9]*:' "$logs/make.log" | tail -1 | grep -o '[0-9]*')
  read -r _ _ started since < <(grep '^=== make' "$logs/make.log" | tail -1)
  proj="n/a"
  if [ "$done_stages" = 0 ] && [ -n "${ms[wide]:-}" ]; then
    proj="training alone about $(awk -v m="${ms[wide]}" 'BEGIN{printf "%.0f", m * 240 * 37500 / 1000}') s from the K=$wide_k speed"
  fi
  if [ "${started:-}" = models ] && [ -n "${epochs:-}" ]; then
    proj="training about $(awk -v t="$(($(date +%s) - since))" -v e="$epochs" -v n="$make_epochs" 'BEGIN{printf "%.0f", n * t / e}') s from the epochs done (validation included)"
  fi
  fact "make all ${make_vars[*]}: stopped in stage ${started:-?} after $total s of finished stages; $models model JSONs, last epoch ${epochs:-none}; projected: $proj"
  md "Stopped in \`make ${started:-?}\`: $models model JSONs written, last epoch logged ${epochs:-none}; projected: $proj."
  md ""
fi

# --- summary -------------------------------------------------------------------------
{
  echo "# GPU check summary ($mode, $(elapsed) s of $budget)"
  echo
  cat "$steps_table"
  echo
  cat "$facts"
  echo
  echo "Tables: $report; logs: $out/logs.tar.gz"
} >"$out/summary.md"
{ md "## Steps"; md ""; cat "$steps_table" >>"$report"; }
tar -C "$work" -czf "$out/logs.tar.gz" logs
cat "$out/summary.md"
if [ "$failed" = 0 ]; then echo "gpu-check: all steps ok"; else echo "gpu-check: SOME STEPS FAILED"; fi
[ -z "${GPU_CHECK_WORK:-}" ] && rm -rf "$work"
exit $failed
