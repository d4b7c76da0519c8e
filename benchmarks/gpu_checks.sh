#!/usr/bin/env bash
# The GPU checks of the open issues as one prepared script, for a lent GPU (the device tool's
# `run`, from the repository root, carrying `.whl`). Not yet run: no GPU was lent to the session
# that wrote it. There, python3 holds PyTorch with CUDA; effvid's other needs travel as wheels:
#
#   here, once:  echo /.whl/ >> .git/info/exclude && bash benchmarks/gpu_checks.sh --fetch-wheels
#   there:       bash benchmarks/gpu_checks.sh          (writes under $OUT)
#
# What it measures (each figure with the GPU's name):
#   1. inference latency (batch 1) and throughput (batch 64), training clips/s: VMF-XS, VMF-S,
#      X3D-XS, X3D-S, DualFormer-T; fp32 and bf16 autocast, eager and torch.compile,
#      channels-last 3-D, cudnn.benchmark (benchmarks/gpu_bench.py);
#   2. a 1-GPU torchrun training run with nccl and CUDA AMP on the demo data;
#   3. the VMF study on CUDA (benchmarks/study.py --device cuda, 8 runs at a time);
#   4. predict over 500 demo videos on CUDA (videos/s, and decode vs model).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="av pydantic pydantic-core annotated-types typing-inspection tensorboardX"
if [ "${1:-}" = "--fetch-wheels" ]; then
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl $WHEELS
  exit 0
fi
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 EFFVID_CACHE_DIR=/tmp/effvid-cache
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"

timeout 240 python3 benchmarks/gpu_bench.py --device cuda --out "$OUT/gpu_bench.json" \
  | tee "$OUT/gpu_bench.log"

timeout 120 torchrun --standalone --nproc_per_node=1 -m effvid.cli train --config demo \
  --device cuda train.epochs=2 train.amp=bf16 data.workers=8 data.frame_cache=true \
  output.dir=/tmp/ddp_run 2>&1 | tail -n 20 | tee "$OUT/torchrun.log"

timeout 300 python3 benchmarks/study.py --device cuda --workers 8 --out /tmp/study \
  --report "$OUT/study" | tail -n 60 | tee "$OUT/study.log"

timeout 120 python3 -m effvid.cli predict "$(python3 -c 'from effvid.data import make_demo_data;
print(make_demo_data(progress=False).root / "train.txt")')" --checkpoint /tmp/ddp_run/best.pth \
  --device cuda --workers 8 --batch-size 256 --output /tmp/predictions.jsonl 2>&1 \
  | tail -n 5 | tee "$OUT/predict.log"
