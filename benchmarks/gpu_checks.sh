#!/usr/bin/env bash
# Issue 34's checks on a CUDA machine, in one run of at most 8 minutes (on one H200 with 16 cores):
#
#   1. sequence(): tlb against cuDNN's LSTM, forward + backward, B=64 T=1024 D=128.
#      Target: tlb <= 0.2x lstm.
#   2. Training throughput on BabyAI-GoToLocal-v0, 64 envs in subprocesses, n_steps 128, batch 256, 4 epochs:
#      MemoryPPO(tlb) and MemoryPPO(none) on the GPU, then MemoryPPO(tlb) on one CPU thread.
#      Targets: GPU tlb >= 0.9x GPU none; GPU tlb >= 3x CPU tlb.
#   3. The whole test suite with --device cuda (the CUDA-only host-synchronisation test included).
#      Target: it passes.
# and prints the target ratios at the end. Everything it prints is also written under $OUT (the device
# tool's output folder, else runs/gpu-checks/): sequence.json, throughput_gpu.json, throughput_cpu.json,
# *.log, tests.log.
#
# What it needs there: Python with torch (CUDA), numpy, pandas, matplotlib, scipy, seaborn, statsmodels,
# pyyaml, tensorboard, pytest and pytest-xdist (the H200 image has them); and gymnasium, minigrid,
# pygame-ce, stable-baselines3, sb3-contrib, popgym, rliable and arch, which it lacks: carry them as wheels.
# Once, here, with network:     bash benchmarks/gpu_wheels.sh          (fills .whl/, git-ignored, ~14 MB)
# Then with the device tool:    run(command="bash benchmarks/gpu_checks.sh", carry=[".whl"], timeout_s=540)
# Ray does not fit what a run may carry (64 MiB): without it tests/test_study.py is left out, and said so.
#
# Budget (seconds, each step stopped at its limit so the run ends inside 8 minutes): wheels 15,
# sequence 45, GPU throughput 130, CPU throughput 80, tests 200 (with 8 xdist workers).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PYTHON" - <<'EOF' || exit 1
import torch
assert torch.cuda.is_available(), "no CUDA device: these checks are for a GPU machine"
import gymnasium, minigrid, popgym, sb3_contrib, stable_baselines3  # noqa: F401  (carried wheels)
print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {torch.get_num_threads()} CPU threads")
EOF
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true

echo "== 1. sequence(), B=64 T=1024: tlb against cuDNN's LSTM"
timeout 45 "$PYTHON" benchmarks/sequence_speed.py --device cuda --batch 64 --length 1024 --memories tlb \
  --repeats 5 --json "$OUT/sequence.json" 2>&1 | tee "$OUT/sequence.log"

echo "== 2a. GoToLocal, 64 envs in subprocesses, on the GPU: tlb and none"
timeout 130 "$PYTHON" benchmarks/throughput.py --device cuda --n-envs 64 --subproc --models tlb none \
  --threads 4 --rounds 2 --rollouts-per-round 1 --json "$OUT/throughput_gpu.json" 2>&1 \
  | tee "$OUT/throughput_gpu.log"

echo "== 2b. the same, tlb on one CPU thread"
timeout 80 "$PYTHON" benchmarks/throughput.py --device cpu --n-envs 64 --subproc --models tlb \
  --threads 1 --rounds 1 --rollouts-per-round 1 --json "$OUT/throughput_cpu.json" 2>&1 \
  | tee "$OUT/throughput_cpu.log"

echo "== 3. the test suite with --device cuda"
ignore=()
if ! "$PYTHON" -c "import ray" 2>/dev/null; then
  echo "(ray is not installed here: tests/test_study.py is left out)"
  ignore=(--ignore=tests/test_study.py)
fi
workers=()
if "$PYTHON" -c "import xdist" 2>/dev/null; then
  workers=(-n 8)
fi
timeout 200 "$PYTHON" -m pytest -q -p no:cacheprovider --device cuda "${workers[@]}" "${ignore[@]}" \
  -rfEs 2>&1 | tee "$OUT/tests.log" | tail -40
tests_status=${PIPESTATUS[0]}

echo "== targets"
"$PYTHON" - "$OUT" "$tests_status" <<'EOF'
import json
import sys
from pathlib import Path

out, tests_status = Path(sys.argv[1]), int(sys.argv[2])


def read(name):
    path = out / name
    return json.loads(path.read_text()) if path.is_file() else None


def line(what, value, target, ok):
    shown = "not measured" if value is None else f"{value:.2f}"
    verdict = "" if value is None else ("  met" if ok(value) else "  NOT met")
    print(f"  {what:58s} {shown:>12s}  (target {target}){verdict}")


sequence, gpu, cpu = read("sequence.json"), read("throughput_gpu.json"), read("throughput_cpu.json")
seq = sequence and sequence["median"]["forward + backward"]["tlb (N=4, K=8)"]["x_lstm"]
line("sequence() B=64 T=1024, tlb / cuDNN lstm", seq, "<= 0.2", lambda v: v <= 0.2)
ratio = gpu and gpu["ratios"].get("tlb / MemoryPPO(none)")
line("GoToLocal 64 envs, GPU: tlb / none", ratio, ">= 0.9", lambda v: v >= 0.9)
both = gpu and cpu and gpu["fps"].get("MemoryPPO(tlb)") and cpu["fps"].get("MemoryPPO(tlb)")
gain = gpu["fps"]["MemoryPPO(tlb)"] / cpu["fps"]["MemoryPPO(tlb)"] if both else None
line("GoToLocal 64 envs: tlb GPU / tlb on one CPU thread", gain, ">= 3", lambda v: v >= 3)
for name, data in (("GPU", gpu), ("CPU, 1 thread", cpu)):
    if data:
        print(f"  frames/s {name}: " + ", ".join(f"{k} {v:,.0f}" for k, v in data["fps"].items()))
verdict = {0: "passed", 124: "stopped at its time limit", 5: "collected nothing"}.get(tests_status, "FAILED")
print(f"  test suite with --device cuda: {verdict} (exit code {tests_status}; see tests.log)")
EOF
