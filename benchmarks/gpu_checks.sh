#!/usr/bin/env bash
# The GPU measurements the issues ask for, as one script for a machine with a CUDA GPU: the
# CUDA-graph step's tests, a short study (what trials record there), training throughput (one
# trial against the tutorial loop, eager and as a graph, and N concurrent trials on the GPU)
# and zero-cost proxy speed in both layouts. Logs go to $OUT (default: gpu-out/).
#
#   make gpu-wheels                      # here: nas-hpo, optuna, colorlog wheels into .whl/
#   bash benchmarks/gpu_checks.sh        # there, in the repository root
#
# On a machine where nas-hpo's dependencies are missing (a bare PyTorch image), the wheels in
# .whl/ (nas-hpo's own, built from this checkout, among them) are installed into /tmp/site
# first, and everything imports nas_hpo from there (pytest with -P: not from the checkout,
# whose layout maps spaces/ and objectives/ into the package only when installed). The sizes
# below stay inside 10 minutes on an H200; override them with these variables.
set -euo pipefail
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-gpu-out}
WORKERS=${WORKERS:-"8 16"}       # concurrent trials sharing the GPU, one run per value
WINDOW=${WINDOW:-15}             # seconds of each concurrent run
SPACES=${SPACES:-nb201}          # spaces of the throughput measurement
STUDY_TRIALS=${STUDY_TRIALS:-6}  # trials of the lifecycle check
TRAIN_ARCHS=${TRAIN_ARCHS:-3}    # architectures per training measurement
EPOCHS=${EPOCHS:-5}              # epochs of each training measurement
ZC_ARCHS=${ZC_ARCHS:-20}         # architectures per zero-cost measurement
PY=${PY:-python3}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONUNBUFFERED=1
{ nvidia-smi || true; "$PY" -c "import torch, optuna; print('torch', torch.__version__,
'optuna', optuna.__version__, 'cuda', torch.cuda.is_available())"; } 2>&1 | tee "$OUT/env.txt"
# The CUDA-graph training step against the eager one (skipped where there is no CUDA).
"$PY" -P -m pytest -q -p no:cacheprovider tests/training/test_step.py 2>&1 | tee "$OUT/test_step.txt" \
    || echo "test_step: FAILED (the measurements go on)"
# A study through the whole trial lifecycle: the graph flag and the latency recorded on trials.
"$PY" benchmarks/gpu_study.py --device "$DEVICE" --trials "$STUDY_TRIALS" 2>&1 \
    | tee "$OUT/gpu_study.txt" || echo "gpu_study: FAILED"
# One nb201 (C=16, N=5) trial against the PyTorch-tutorial loop, on digits and on 32x32 images
# ($EPOCHS epochs here: the ratio is per architecture trained), eager too; then WORKERS concurrent
# trials (each value a run) on the one GPU.
"$PY" benchmarks/train_throughput.py --device "$DEVICE" --spaces $SPACES \
    --datasets digits random32 --epochs "$EPOCHS" --archs "$TRAIN_ARCHS" --workers $WORKERS \
    --seconds "$WINDOW" --eager 2>&1 | tee "$OUT/train_throughput.txt" \
    || echo "train_throughput: FAILED"
# The zero-cost floor and every proxy, in both layouts.
for layout in contiguous channels_last; do
    "$PY" benchmarks/zero_cost_speed.py --device "$DEVICE" --archs "$ZC_ARCHS" \
        --layout "$layout" 2>&1 | tee "$OUT/zero_cost_speed_$layout.txt" \
        || echo "zero_cost_speed $layout: FAILED"
done
