#!/usr/bin/env bash
# Candidate priors on the validation people, the first also in coronal
# slices (val_coronal; the shipping rule of docs/training.md), then the test people for the
# old and the shipped prior.
#
#   bash benchmarks/generalisation.sh val S=mrirecon_vdm/prior/weights O=/path/prior_O ...
#   bash benchmarks/generalisation.sh test S=/path/old_prior N=mrirecon_vdm/prior/weights
#
# Each LABEL=PRIOR is a prior folder (prior.json + prior.safetensors). Results go to
# $OUT/<split>_<label>/ (default OUT=results/generalise; classical methods once per split in
# <split>_classical/); every run resumes after a kill (--resume). Classical weights are the
# shipped ones (tuned on val_person). The VDM methods run one thread each.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
OUT=${OUT:-results/generalise}
stage=$1; shift
case $stage in
  val)  splits="val_person:8 val_coronal:8 val_t2:4"; vdm="vdm-mean4" ;;
  test) splits="test:4 test_coronal:4 val_t2:4"; vdm="vdm-fast-25 vdm-mean4" ;;
  *) echo "usage: $0 val|test LABEL=PRIOR ..." >&2; exit 2 ;;
esac
classical="zero-fill bicubic sigpy-wavelet sigpy-tv bart-wavelet bart-tv"
for sp in $splits; do
  split=${sp%:*}; stride=${sp#*:}
  $BIN/mrirecon-vdm bench --split "$split" --stride "$stride" --scales 4 2 \
      --methods $classical --out "$OUT/${split}_classical" --resume
  for spec in "$@"; do
    label=${spec%%=*}; prior=${spec#*=}
    MRIRECON_VDM_PRIOR=$prior $BIN/mrirecon-vdm bench --split "$split" --stride "$stride" \
        --scales 4 2 --methods $vdm --out "$OUT/${split}_${label}" --resume
  done
done
