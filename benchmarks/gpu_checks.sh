#!/usr/bin/env bash
# The GPU measurements the issues ask for, as one script for a machine with a CUDA GPU. Parts
# (PARTS, in this order; default all):
#   test        the CUDA-graph step's tests (tests/training/test_step.py)
#   train       one nb201 (C=16, N=5) trial against the PyTorch-tutorial loop, on digits and
#               on 32x32 images, as a CUDA graph and eager; again in fp32
#   zero_cost   the zero-cost floor and every proxy, in both layouts
#   zc_concurrent  ZC_WORKERS concurrent processes building and scoring cells with synflow
#               (each value a run; under MPS with MPS=1)
#   concurrent  WORKERS concurrent trials on the one GPU (each value a run), with MPS=1 under
#               NVIDIA's Multi-Process Service (started here, stopped at the end)
#   study       a short study in memory (what trials record), then STUDY_TRIALS trials on
#               SQLite with workers = "auto" (the memory-aware default) through the backend
# Logs go to $OUT (default: gpu-out/).
#
#   make gpu-wheels                      # here: nas-hpo and what it needs into .whl/
#   bash benchmarks/gpu_checks.sh        # there, in the repository root
#
# On a machine where nas-hpo's dependencies are missing (a bare PyTorch image), the wheels in
# .whl/ (nas-hpo's own, built from this checkout, among them) are installed into /tmp/site
# first, and everything imports nas_hpo from there (pytest with -P: not from the checkout,
# whose layout maps spaces/ and objectives/ into the package only when installed). On an
# H200 the parts took 282 s (all but the 20-epoch train part) and 253 s (test, train,
# concurrent with WORKERS="16 32" on digits, study) in two calls; later 248 s for test, train
# (20 epochs), zc_concurrent (ZC_WORKERS="1 16"), concurrent (WORKERS=16, digits) and study in
# one; all of them at these sizes is an estimated 8-9 minutes: choose PARTS to stay inside a
# 10-minute call.
set -uo pipefail
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-gpu-out}
PARTS=${PARTS:-"test train zero_cost zc_concurrent concurrent study"}
EPOCHS=${EPOCHS:-20}             # epochs of the single-trial measurement (issue 4's reference)
TRAIN_ARCHS=${TRAIN_ARCHS:-3}    # architectures per single-trial measurement
WORKERS=${WORKERS:-"8 16 32"}    # concurrent trials sharing the GPU, one run per value
WINDOW=${WINDOW:-15}             # seconds of each concurrent run
CONCURRENT_EPOCHS=${CONCURRENT_EPOCHS:-5}
CONCURRENT_DATASETS=${CONCURRENT_DATASETS:-"digits random32"}
MPS=${MPS:-1}                    # the concurrent runs and the study under MPS
STUDY_TRIALS=${STUDY_TRIALS:-240}
ZC_ARCHS=${ZC_ARCHS:-20}         # architectures per zero-cost measurement
ZC_WORKERS=${ZC_WORKERS:-"1 8 16"}  # concurrent synflow processes, one run per value
ZC_WINDOW=${ZC_WINDOW:-10}       # seconds of each concurrent synflow run
PY=${PY:-python3}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONUNBUFFERED=1
has() { [[ " $PARTS " == *" $1 "* ]]; }
{ nvidia-smi || true; "$PY" -c "import torch, optuna; print('torch', torch.__version__,
'optuna', optuna.__version__, 'cuda', torch.cuda.is_available())"; } 2>&1 | tee "$OUT/env.txt"

if has test; then
    "$PY" -P -m pytest -q -p no:cacheprovider tests/training/test_step.py 2>&1 \
        | tee "$OUT/test_step.txt" || echo "test: FAILED (the measurements go on)"
fi
if has train; then
    "$PY" benchmarks/train_throughput.py --device "$DEVICE" --spaces nb201 \
        --datasets digits random32 --epochs "$EPOCHS" --archs "$TRAIN_ARCHS" --eager 2>&1 \
        | tee "$OUT/train_throughput.txt" || echo "train: FAILED"
    "$PY" benchmarks/train_throughput.py --device "$DEVICE" --spaces nb201 \
        --datasets digits random32 --epochs "$EPOCHS" --archs "$TRAIN_ARCHS" --precision fp32 \
        2>&1 | tee "$OUT/train_throughput_fp32.txt" || echo "train fp32: FAILED"
fi
if has zero_cost; then
    for layout in contiguous channels_last; do
        "$PY" benchmarks/zero_cost_speed.py --device "$DEVICE" --archs "$ZC_ARCHS" \
            --layout "$layout" 2>&1 | tee "$OUT/zero_cost_speed_$layout.txt" \
            || echo "zero_cost $layout: FAILED"
    done
fi
if [[ "$MPS" == 1 && "$DEVICE" == cuda* ]] && { has concurrent || has study || has zc_concurrent; }; then
    # MPS lets the kernels of several processes run on the GPU at once instead of in turns.
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps CUDA_MPS_LOG_DIRECTORY=/tmp/nvidia-mps-log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if nvidia-cuda-mps-control -d && timeout 60 "$PY" -c \
            "import torch; torch.zeros(1, device='cuda').sum().item()"; then
        echo "MPS: started" | tee "$OUT/mps.txt"
        trap 'echo quit | nvidia-cuda-mps-control' EXIT
    else
        echo "MPS: could not start; the runs below are without it" | tee "$OUT/mps.txt"
        echo quit | nvidia-cuda-mps-control 2>/dev/null
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    fi
fi
if has zc_concurrent; then
    "$PY" benchmarks/zero_cost_speed.py --device "$DEVICE" --archs 0 \
        --workers $ZC_WORKERS --seconds "$ZC_WINDOW" 2>&1 | tee "$OUT/zero_cost_concurrent.txt" \
        || echo "zc_concurrent: FAILED"
fi
if has concurrent; then
    "$PY" benchmarks/train_throughput.py --device "$DEVICE" --spaces nb201 \
        --datasets $CONCURRENT_DATASETS --epochs "$CONCURRENT_EPOCHS" --archs "$TRAIN_ARCHS" \
        --workers $WORKERS --seconds "$WINDOW" 2>&1 | tee "$OUT/concurrent.txt" \
        || echo "concurrent: FAILED"
fi
if has study; then
    "$PY" benchmarks/gpu_study.py --device "$DEVICE" --trials 6 --workers 1 2>&1 \
        | grep -v "^\[I " | tee "$OUT/gpu_study.txt" || echo "study: FAILED"
    "$PY" benchmarks/gpu_study.py --device "$DEVICE" --trials "$STUDY_TRIALS" \
        --epochs "$CONCURRENT_EPOCHS" --storage "sqlite:////tmp/gpu_study.db" --show 3 2>&1 \
        | grep -v "^\[I " | tee "$OUT/gpu_study_auto.txt" || echo "study auto: FAILED"
fi
