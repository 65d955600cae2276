#!/usr/bin/env bash
# The GPU checks of issue 11, for a session that is lent a CUDA machine (not run yet: none was lent
# while this was written). From the repository root:
#
#     bench/gpu_check.sh [DATA_ROOT]      # DATA_ROOT holds cifar-10-batches-py/ (default: $CIFAR10_ROOT,
#                                         # else .cache/cifar10-dev); results also under $OUT (or /tmp/gpu-check)
#
#   1. the data-parallel path on 1 GPU: the gpu_cnn preset as a stored run under
#      `torchrun --standalone --nproc-per-node 1` (process group with NCCL, DDP, rank 0 writing the store);
#      prints the run's device (must name nccl), status, accuracy and training time;
#   2. bench.gpu_cnn: the preset three times in one process (accuracy, training and wall seconds);
#   3. with 2 or more GPUs, bench.ddp_scaling on all of them (images/s on N GPUs / N x one GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${1:-${CIFAR10_ROOT:-.cache/cifar10-dev}}
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
RUNS="$OUT/runs"
rm -rf "$RUNS"
export CIFAR10_ROOT="$DATA" CIFARLAB_OFFLINE=1

"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print('GPU:', torch.cuda.get_device_name(0), '| GPUs:', torch.cuda.device_count(), '| torch', torch.__version__, \
'| NCCL', '.'.join(map(str, torch.cuda.nccl.version())))" | tee "$OUT/gpu.txt"

echo "== 1. gpu_cnn under torchrun on 1 GPU (NCCL) ==" | tee "$OUT/torchrun.txt"
# --nnodes 1 stores the run without starting it and prints the torchrun command; start it on 1 GPU here.
"$PY" -m core train --preset gpu_cnn --device cuda --nproc 1 --nnodes 1 --rdzv-endpoint localhost:29500 \
    --runs-dir "$RUNS" | tee -a "$OUT/torchrun.txt"
start=$(date +%s.%N)
"$PY" -m torch.distributed.run --standalone --nproc-per-node 1 -m core -- train --run 1 --runs-dir "$RUNS" \
    --resume --no-progress 2>&1 | tee -a "$OUT/torchrun.txt"
end=$(date +%s.%N)
"$PY" - "$RUNS" "$start" "$end" <<'PY' | tee -a "$OUT/torchrun.txt"
import sys
from core.runs.store import RunStore
run = RunStore(sys.argv[1]).get(1)
print(f"run #1: {run.status}; device: {run.device}; final test accuracy {100 * (run.final_test_acc or 0):.2f}%; "
      f"training {run.train_seconds:.1f} s; torchrun wall {float(sys.argv[3]) - float(sys.argv[2]):.1f} s")
assert "nccl" in (run.device or ""), "the run did not use NCCL"
assert run.status == "completed", run.message
PY

echo "== 2. bench.gpu_cnn ==" | tee "$OUT/gpu_cnn.txt"
"$PY" -m bench.gpu_cnn "$DATA" --runs 3 2>&1 | tee -a "$OUT/gpu_cnn.txt"

GPUS=$("$PY" -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -ge 2 ]; then
    echo "== 3. bench.ddp_scaling on $GPUS GPUs ==" | tee "$OUT/ddp_scaling.txt"
    "$PY" -m bench.ddp_scaling --device cuda --preset gpu_cnn --nproc "$GPUS" --train-subset 40000 --epochs 3 \
        --data-root "$DATA" 2>&1 | tee -a "$OUT/ddp_scaling.txt"
fi
