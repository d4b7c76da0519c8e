#!/usr/bin/env bash
# GPU checks as one prepared script: run it from the repository root on a machine with an
# NVIDIA GPU, where python3 holds PyTorch with CUDA. effvid's other needs are installed from
# wheels in .whl/, fetched beforehand on a machine with network access:
#
#   with network, once:  echo /.whl/ >> .git/info/exclude && bash benchmarks/gpu_checks.sh --fetch-wheels
#   on the GPU machine:  bash benchmarks/gpu_checks.sh          (writes under $OUT, default gpu_out/)
#
# What it measures (each figure with the GPU's name), in about 10 minutes:
#   1. the token study's open comparison with more seeds than 2 CPU cores can give it: VMF-XXS
#      minus its CNN alone on the global task, 20 epochs, as many seeds as fit in 240 s, 8 runs
#      at once (research/vmf_tokens/demo_pair.py --device cuda; its own report, never paired
#      with CPU runs);
#   2. inference latency (batch 1) and throughput (batch 64), training clips/s: VMF-XS, VMF-S,
#      X3D-XS, X3D-S, DualFormer-T; fp32 and bf16 autocast, eager and torch.compile,
#      channels-last 3-D, cudnn.benchmark (benchmarks/gpu_bench.py);
#   3. a 1-GPU torchrun training run with nccl and CUDA AMP on the demo data;
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

PAIR="research/vmf_tokens/demo_pair.py --task global --epochs 20 --device cuda"
timeout 60 python3 -m effvid.cli make-demo-data --task global || true  # once, not 8 times
timeout 240 python3 $PAIR --seeds 40 --jobs 8 > "$OUT/demo_pair.log" 2>&1 || true
python3 $PAIR --seeds 0 | tee "$OUT/demo_pair.md"   # the report of the seeds that finished
cp research/vmf_tokens/results/demo_pair_global_e20_cuda.json "$OUT/"

timeout 150 python3 benchmarks/gpu_bench.py --device cuda --out "$OUT/gpu_bench.json" \
  | tee "$OUT/gpu_bench.log"

timeout 60 torchrun --standalone --nproc_per_node=1 -m effvid.cli train --config demo \
  --device cuda train.epochs=2 train.amp=bf16 data.workers=8 data.frame_cache=true \
  output.dir=/tmp/ddp_run 2>&1 | tail -n 20 | tee "$OUT/torchrun.log"

timeout 45 python3 -m effvid.cli predict "$(python3 -c 'from effvid.data import make_demo_data;
print(make_demo_data(progress=False).root / "train.txt")')" --checkpoint /tmp/ddp_run/best.pth \
  --device cuda --workers 8 --batch-size 256 --output /tmp/predictions.jsonl 2>&1 \
  | tail -n 5 | tee "$OUT/predict.log"
