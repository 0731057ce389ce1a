#!/usr/bin/env bash
# Train the prior on a GPU for a fixed wall-clock budget, then bring back half-precision
# weights (docs/training.md, "Capacity on a GPU"). Nothing here needs a
# package the device image lacks: training imports torch, numpy, h5py, safetensors, tqdm.
#
# Here, once:   python benchmarks/pack_device_data.py        # .devicedata/train.npz, 19 MB
# There:        the device tool's run, carry [".devicedata"], timeout_s 600:
#                 bash benchmarks/device_train.sh
# Back:         $OUT/prior/prior.safetensors + prior.json (float16, 18 MB for 64 channels),
#               $OUT/metrics.csv, $OUT/val.csv, $OUT/train.log. Then, here, compare it with
#               the shipped prior by the rule in docs/training.md before anything ships.
#
# Environment: OUT (the tool's output folder; required), CONFIG (default the 64-channel
# recipe, mrirecon_vdm/prior/configs/brain128_w64.json), BUDGET_S (training seconds, default
# 480: the run stops cleanly on SIGTERM after its current step and checkpoints), STEPS (an
# upper bound, default 1000000), DATA (default .devicedata/train.npz), PYTHON (default
# python3), RUN_DIR (checkpoints, default /tmp/device_run: never under $OUT, a checkpoint
# with optimiser state is far over the 16 MB a returned file may have), EXTRA (more train
# options, e.g. "--init mrirecon_vdm/prior/weights" to fine-tune).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?OUT must name the output folder}"
PY=${PYTHON:-python3}
CONFIG=${CONFIG:-mrirecon_vdm/prior/configs/brain128_w64.json}
DATA=${DATA:-.devicedata/train.npz}
RUN=${RUN_DIR:-/tmp/device_run}
[ -f "$DATA" ] || { echo "device_train: $DATA not found (python benchmarks/pack_device_data.py, and carry it)" >&2; exit 2; }
mkdir -p "$OUT" "$RUN"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
rc=0
# shellcheck disable=SC2086
timeout -s TERM --kill-after=60 "${BUDGET_S:-480}" "$PY" -m mrirecon_vdm.cli train \
  --config "$CONFIG" --data "$DATA" --out "$RUN" --resume --steps "${STEPS:-1000000}" \
  --sample-every 0 --no-progress ${EXTRA:-} > "$OUT/train.log" 2>&1 || rc=$?
# 124: the budget ran out (SIGTERM: the step finished and a checkpoint was written)
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
  tail -n 30 "$OUT/train.log" >&2; echo "device_train: training failed (exit $rc)" >&2; exit "$rc"
fi
[ -f "$RUN/checkpoint.pt" ] || { echo "device_train: no checkpoint in $RUN" >&2; exit 3; }
"$PY" - "$RUN/checkpoint.pt" "$OUT/prior" "$CONFIG" <<'PYEOF'
import sys
from mrirecon_vdm.prior import export_pretrained
ckpt, out, config = sys.argv[1:4]
w, m = export_pretrained(ckpt, out, {"data": ".devicedata/train.npz (brain128_people.h5 "
                                     "train split, float16)", "config": config,
                                     "trained_on": "lent GPU, benchmarks/device_train.sh"},
                         dtype="float16")
print(f"exported {w} ({w.stat().st_size / 1e6:.1f} MB) and {m}")
PYEOF
for f in metrics.csv val.csv; do [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"; done
tail -n 3 "$OUT/train.log"
