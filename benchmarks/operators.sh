#!/usr/bin/env bash
# The operator benchmarks of README "Results" and docs/results.md ("Undersampled and
# multi-coil k-space"): every classical method (with and without the constraint the prior
# uses) and the VDM methods on the same operators, on the two held-out test people and the
# T2-weighted person (SPLITS; every 8th slice, every 4th for sr), two jobs at a time (one
# per core, one torch thread each).
# Resumable: rerun the same command after a kill (--resume).
#   bash benchmarks/operators.sh [TASK ...]   TASK in cart4phase poisson8phase cart8coils8phase
#                                             (the headline), cart4 poisson8 (real images),
#                                             cart8coils8 cart4noisy poisson8noisy sr
#   METHODS="..." SPLITS="..." bash benchmarks/operators.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-results/operators}
# the constrained classical methods run where their image model is the task's (-real: one
# coil, no phase; -phase: a phase or coils), the others are skipped with a note
CLASSICAL="zero-fill sigpy-wavelet sigpy-tv bart-wavelet bart-tv sigpy-wavelet-real sigpy-tv-real
  bart-wavelet-real bart-tv-real sigpy-wavelet-phase sigpy-tv-phase bart-wavelet-phase
  bart-tv-phase"
METHODS=${METHODS:-"$CLASSICAL vdm-mean4 vdm-pnp"}
SPLITS=${SPLITS:-"test test_coronal val_t2"}
export MRIRECON_VDM_THREADS=${MRIRECON_VDM_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
run() {   # name, then bench options
  local name=$1; shift
  for split in $SPLITS; do
    "$BIN/mrirecon-vdm" bench --split "$split" --stride "${STRIDE:-8}" --methods $METHODS \
      --out "$OUT/${name}_${split}" --resume "$@" > "$OUT/${name}_${split}.log" 2>&1 &
  done
  wait
}
mkdir -p "$OUT"
for task in "${@:-cart4phase poisson8phase cart8coils8phase cart4 poisson8}"; do
  for t in $task; do
    case $t in
      cart4) run cart4 --task cartesian --accel 4 ;;
      poisson8) run poisson8 --task poisson --accel 8 ;;
      cart4phase) run cart4phase --task cartesian --accel 4 --phase smooth ;;
      poisson8phase) run poisson8phase --task poisson --accel 8 --phase smooth ;;
      cart8coils8phase) run cart8coils8phase --task cartesian --accel 8 --coils 8 \
            --center-fraction 0.1 --phase smooth ;;
      cart8coils8) run cart8coils8 --task cartesian --accel 8 --coils 8 --center-fraction 0.1 ;;
      # one coil with k-space noise 0.05 (the validation tasks cart4_noisy / poisson8_noisy
      # of benchmarks/pnp_validation.py): every method with its defaults, σ not passed
      cart4noisy) run cart4noisy --task cartesian --accel 4 --sigma 0.05 ;;
      poisson8noisy) run poisson8noisy --task poisson --accel 8 --sigma 0.05 ;;
      # super-resolution: the classical methods and plug-and-play on every 4th slice, to
      # pair with the guided samplers' runs of the same slices
      sr) STRIDE=4 METHODS="${METHODS/vdm-mean4 /}" run sr --scales 4 2 ;;
      *) echo "unknown task $t" >&2; exit 2 ;;
    esac
  done
done
