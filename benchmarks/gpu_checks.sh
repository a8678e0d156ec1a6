#!/usr/bin/env bash
# The GPU measurements the issues ask for, as one script for a machine with a CUDA GPU:
# training throughput (one trial against the tutorial loop, and N concurrent trials on the
# GPU) and zero-cost proxy speed in both layouts. Logs go to $OUT (default: gpu-out/).
#
#   make gpu-wheels                      # here: optuna + colorlog wheels into .whl/ (CPython 3.12)
#   bash benchmarks/gpu_checks.sh        # there, in the repository root
#
# On a machine where nas-hpo's dependencies are missing (a bare PyTorch image), the wheels in
# .whl/ are installed into /tmp/site first; nas-hpo itself runs from the checkout. The sizes
# below are meant to stay well inside 10 minutes on an H100/H200 (an estimate: the script has
# run with DEVICE=cpu only); override them with these variables.
set -euo pipefail
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-gpu-out}
WORKERS=${WORKERS:-8}            # concurrent trials sharing the GPU
WINDOW=${WINDOW:-30}             # seconds of each concurrent run
TRAIN_ARCHS=${TRAIN_ARCHS:-3}    # architectures per training measurement
ZC_ARCHS=${ZC_ARCHS:-20}         # architectures per zero-cost measurement
PY=${PY:-python3}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
{ nvidia-smi || true; "$PY" -c "import torch, optuna; print('torch', torch.__version__,
'optuna', optuna.__version__, 'cuda', torch.cuda.is_available())"; } 2>&1 | tee "$OUT/env.txt"
# Issue 4: nb201 on digits is the reference (20 epochs there; 2 here, the ratio is
# per architecture trained); 32x32 data is random CIFAR-shaped images.
"$PY" benchmarks/train_throughput.py --device "$DEVICE" --spaces nb201 resnet_blocks \
    --datasets digits random32 --epochs 2 --archs "$TRAIN_ARCHS" --workers "$WORKERS" \
    --seconds "$WINDOW" 2>&1 | tee "$OUT/train_throughput.txt"
# Issue 7: the floor and every proxy, in both layouts (the CPU default is channels_last; a
# GPU's default layout is contiguous until these numbers say otherwise).
for layout in contiguous channels_last; do
    "$PY" benchmarks/zero_cost_speed.py --device "$DEVICE" --archs "$ZC_ARCHS" \
        --layout "$layout" 2>&1 | tee "$OUT/zero_cost_speed_$layout.txt"
done
