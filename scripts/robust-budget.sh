#!/usr/bin/env bash
# The budget table of issue 14.5: does more attack budget still move the worst case?
#
# usage: scripts/robust-budget.sh ROOT SEED
#
# Runs `adversary-gen robust` and `evaluator robust` on set SEED of ROOT once per
# rung of a budget ladder, each rung in a root of its own (OUT/RUNG, whose data/ and
# seed-NN/models/ link to ROOT's, so ROOT's own robust files are never touched), then
# prints two markdown tables per model and radius: worst-case misclassification
# (robust.csv's `worst-case` rows: a wrong digit under any attack) and robust error
# with rejection (robust_error.csv), one column per rung, and whether the default
# rung is within 1 point of the largest.
#
# A rung whose scores exist with the same settings and the same adversary-gen binary
# is not rerun (a killed ladder resumes; a rebuilt tool reruns every rung).
# Environment:
#   N (100) sources; EPS_STEP (0.1) and EPS_MAX (0.3) the radii; THREADS (1);
#   BIN (target/release) the tools; OUT (ROOT/budget) the rungs' roots;
#   RUNGS (all) the rungs to run, by name, space-separated, of (every rung names
#   all its budgets, so a rung means the same whatever the tools' defaults are):
#     quarter  PGD 25 steps, APGD 25 iterations x 1 restart, Square 250 queries
#     half     PGD 50 steps, APGD 50 iterations x 1 restart, Square 500 queries
#     v1       the defaults before session 7: PGD 100 steps, APGD 100 iterations
#              x 1 restart, Square 1000 queries
#     wide     v1's steps and iterations, APGD 2 restarts, Square 3000 queries
#     large    PGD 200 steps, APGD 200 iterations x 2 restarts, Square 3000 queries
#     default  the tool's defaults, read from crates/nullclass/src/attack_budget.rs
#              (today PGD 100 steps, APGD 200 iterations x 3 restarts, Square 5000
#              queries, AutoAttack's)
#     double   more of every budget than default: PGD 200 steps, APGD 400
#              iterations x 4 restarts, Square 10000 queries (twice default's
#              steps, iterations and queries; until session 12, with 2 restarts,
#              twice every budget)
#   Every rung has PGD's 0.01 step and 9 targets and APGD-T's 9 targets.
#   TABLE_ONLY=1 runs nothing and prints the tables of the rungs already in OUT.
#   The table's "largest" is the last rung run.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/robust-budget.sh ROOT SEED" >&2; exit 2; }
root=$(cd "$1" && pwd)
seed=$2
[[ $seed =~ ^[0-9]+$ ]] || { echo "robust-budget: SEED must be a whole number" >&2; exit 2; }
set_name=$(printf 'seed-%02d' "$seed")
[ -d "$root/$set_name/models" ] || { echo "robust-budget: $root/$set_name/models missing" >&2; exit 2; }
n=${N:-100}
eps_step=${EPS_STEP:-0.1}
eps_max=${EPS_MAX:-0.3}
threads=${THREADS:-1}
bin=${BIN:-target/release}
out=${OUT:-$root/budget}
rungs=${RUNGS:-quarter half v1 wide large default double}

# The default rung is the tool's defaults, read from their one source of truth (the
# same constants the Makefile's robust stamp reads), so it cannot drift from them.
budget_rs=$(dirname "$0")/../crates/nullclass/src/attack_budget.rs
[ -f "$budget_rs" ] || { echo "robust-budget: $budget_rs missing (run from a checkout)" >&2; exit 2; }
budget_default() {
  local v
  v=$(sed -n "s/^pub const $1: usize = \([0-9_]*\);\$/\1/p" "$budget_rs" | tr -d _)
  [ -n "$v" ] || { echo "robust-budget: $budget_rs has no 'pub const $1: usize'" >&2; return 1; }
  echo "$v"
}
default_steps=$(budget_default PGD_STEPS)
default_apgd_iter=$(budget_default APGD_N_ITER)
default_apgd_restarts=$(budget_default APGD_N_RESTARTS)
default_square_queries=$(budget_default SQUARE_N_QUERIES)

flags_of() {
  case $1 in
    quarter) echo "--steps 25 --apgd-n-iter 25 --apgd-n-restarts 1 --square-n-queries 250" ;;
    half) echo "--steps 50 --apgd-n-iter 50 --apgd-n-restarts 1 --square-n-queries 500" ;;
    v1) echo "--steps 100 --apgd-n-iter 100 --apgd-n-restarts 1 --square-n-queries 1000" ;;
    wide) echo "--steps 100 --apgd-n-iter 100 --apgd-n-restarts 2 --square-n-queries 3000" ;;
    large) echo "--steps 200 --apgd-n-iter 200 --apgd-n-restarts 2 --square-n-queries 3000" ;;
    default) echo "--steps $default_steps --apgd-n-iter $default_apgd_iter --apgd-n-restarts $default_apgd_restarts --square-n-queries $default_square_queries" ;;
    double) echo "--steps 200 --apgd-n-iter 400 --apgd-n-restarts 4 --square-n-queries 10000" ;;
    *) echo "robust-budget: unknown rung $1 (quarter, half, v1, wide, large, default, double)" >&2; return 1 ;;
  esac
}

tool_hash=$(sha256sum <"$bin/adversary-gen" | cut -c1-16)
for rung in $rungs; do
  [ "${TABLE_ONLY:-0}" = 1 ] && break
  flags=$(flags_of "$rung")
  dir="$out/$rung"
  stamp="n=$n eps_step=$eps_step eps_max=$eps_max $flags adversary-gen=$tool_hash"
  if [ -f "$dir/$set_name/eval/robust_meta.json" ] && [ "$(cat "$dir/settings.txt" 2>/dev/null)" = "$stamp" ]; then
    echo "robust-budget: $rung done ($(cat "$dir/wall.txt") s), not rerun" >&2
    continue
  fi
  mkdir -p "$dir/$set_name"
  ln -sfn "$root/data" "$dir/data"
  ln -sfn "$root/$set_name/models" "$dir/$set_name/models"
  rm -f "$dir/settings.txt" "$dir/wall.txt"
  echo "robust-budget: $rung: adversary-gen robust --n $n $flags" >&2
  t0=$(date +%s)
  # shellcheck disable=SC2086 # flags is a list of words
  "$bin/adversary-gen" robust --artifacts "$dir" --seed "$seed" --n "$n" \
    --eps-step "$eps_step" --eps-max "$eps_max" --device cpu --threads "$threads" $flags \
    2>"$dir/adversary-gen.log"
  t1=$(date +%s)
  "$bin/evaluator" robust --artifacts "$dir" --seed "$seed" --device cpu --threads "$threads" \
    2>"$dir/evaluator.log"
  t2=$(date +%s)
  echo "attack $((t1 - t0)) eval $((t2 - t1))" >"$dir/wall.txt"
  echo "$stamp" >"$dir/settings.txt"
  echo "robust-budget: $rung: $((t1 - t0)) s attack, $((t2 - t1)) s scoring" >&2
done

python3 - "$out" "$set_name" $rungs <<'EOF'
import csv, sys
from pathlib import Path

out, set_name, rungs = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
order = ["base", "u", "s", "m", "us", "um", "sm", "usm", "reject-99"]

def read(rung, name, pick):
    rows = {}
    with open(out / rung / set_name / "eval" / name) as f:
        for r in csv.DictReader(f):
            got = pick(r)
            if got is not None and float(r["eps"]) > 0:
                rows[(r["model"], round(float(r["eps"]), 4))] = (got, int(r["n"]))
    return rows

wrong = {r: read(r, "robust.csv",
                 lambda r: int(r["misclassified"]) if r["attack"] == "worst-case" else None)
         for r in rungs}
error = {r: read(r, "robust_error.csv", lambda r: int(r["robust_errors"])) for r in rungs}
walls = {r: (out / r / "wall.txt").read_text().split() for r in rungs}

def table(title, data, models):
    last = rungs[-1]
    keys = sorted(data[last], key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[1]))
    keys = [k for k in keys if k[0] in models]
    print(f"\n{title}\n")
    head = ["model", "eps"] + rungs
    if "default" in rungs and last != "default":
        head += [f"default - {last}", "within 1 point"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    misses = []
    for k in keys:
        cells = [k[0], f"{k[1]:g}"]
        for r in rungs:
            v, n = data[r].get(k, (None, None))
            cells.append("-" if v is None else f"{100.0 * v / n:.1f} %")
        if len(head) > len(rungs) + 2:
            (d, n), (l, _) = data["default"][k], data[last][k]
            gap = 100.0 * (d - l) / n
            ok = abs(gap) <= 1.0
            if not ok:
                misses.append(f"{k[0]} eps {k[1]:g} ({gap:+.1f})")
            cells += [f"{gap:+.1f}", "yes" if ok else "**no**"]
        print("| " + " | ".join(cells) + " |")
    if misses:
        print(f"\nDefault more than 1 point from {last}: " + ", ".join(misses))

n = next(iter(wrong[rungs[-1]].values()))[1]
print(f"Set {set_name}, N = {n} sources. Wall seconds (attack + scoring): "
      + ", ".join(f"{r} {walls[r][1]} + {walls[r][3]}" for r in rungs))
table("Worst-case misclassification (a wrong digit under any attack):", wrong, order[:8])
table("Robust error with rejection (clean error or rejection, or a wrong digit "
      "accepted under the worst case; reject-99: the baseline rejecting p < tau, "
      "99 % of the correct clean images kept):", error, order)
EOF
