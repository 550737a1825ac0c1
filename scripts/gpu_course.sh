#!/usr/bin/env bash
# The whole course on a lent GPU machine, in one call of the device tool (default profile: gpu):
#   run(command="bash scripts/gpu_course.sh [PROFILE]", carry=[".whl"], timeout_s=590)
# It installs the carried wheels in .whl/ that the machine's image lacks, runs the GPU benchmarks
# when BENCH=1 (benchmarks/bench_gpu.py), then every notebook headless (continuing past a failure, so one call
# shows everything), and writes the report, the executed notebooks, the logs and the tables to $OUT.
# RLHF_PRECISION=float16 (passed through) trains as a GPU without native bfloat16 does (Colab's T4).
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "could not install the carried wheels (download the wheels the GPU image lacks into .whl/ first)"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
PROFILE=${1:-gpu}
export RLHF_PROFILE=$PROFILE RLHF_RUNS_DIR=$OUT/runs
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; git rev-parse --short HEAD 2>/dev/null;
  date -u; python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
if [ -n "${BENCH:-}" ]; then  # benchmarks first: their numbers come back even if the course runs out of time
  timeout "${BENCH_TIMEOUT:-150}" python3 benchmarks/bench_gpu.py --profile "$PROFILE" --compile --output "" 2>&1 \
    | tee "$OUT/bench_gpu.txt" | grep -v "it/s\]$" | tail -25
fi
start=$(date +%s)
# the course alone may take up to 10 minutes (its target), and a device call at most 600 s: leave room to copy
timeout "${COURSE_TIMEOUT:-$([ -n "${BENCH:-}" ] && echo 420 || echo 560)}" python3 -m rlhf_course run --profile "$PROFILE" --keep-going ${RUN_ARGS:-} 2>&1 | tee "$OUT/run.log" | grep -v "cell/s\]$"
echo "course wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/machine.txt"
cp "$RLHF_RUNS_DIR/$PROFILE/report.json" "$OUT/report.json" 2>/dev/null
# each notebook's wall time and peak GPU memory (torch.cuda.max_memory_allocated in its kernel): fits a 15 GB T4?
python3 -c 'import json, sys; [print(k, v) for k, v in json.load(open(sys.argv[1])).get("notebooks", {}).items()]' \
  "$OUT/report.json" 2>/dev/null | tee "$OUT/notebooks.txt"
# checkpoints are large: keep only the small files
find "$RLHF_RUNS_DIR" -name "*.safetensors" -delete
