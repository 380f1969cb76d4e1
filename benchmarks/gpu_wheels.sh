#!/usr/bin/env bash
# Download the Python wheels that benchmarks/gpu_checks.sh needs on a CUDA machine whose image has torch,
# numpy, pandas, matplotlib, scipy, seaborn, statsmodels, pyyaml, tensorboard, pytest and pytest-xdist, but
# not gymnasium, MiniGrid, Stable-Baselines3, sb3-contrib, POPGym or rliable (the H200 machines lent to
# sessions here: Python 3.12, x86-64, no network; see .library/device/README.md).
#
#   bash benchmarks/gpu_wheels.sh        # here, in the repository root, with network: fills .whl/ (~14 MB)
#
# Then carry .whl with the run (device tool: carry=[".whl"]); gpu_checks.sh installs them into /tmp/site.
# Ray (Ray Tune, ~70 MB) does not fit the 64 MiB a run may carry: tests/test_study.py is skipped there.
# The versions are those of this project's development environment; one version of each, no dependencies
# beyond these (the rest is in the image).
set -euo pipefail
WHEELS_DIR=${WHEELS_DIR:-.whl}
PYTHON=${PYTHON:-python3}
PACKAGES=(
  gymnasium==1.4.0 farama-notifications==0.0.6 minigrid==3.2.0 pygame-ce==2.5.8
  stable-baselines3==2.9.2 sb3-contrib==2.9.2 popgym==1.0.7 arch==7.2.0
)
PURE_PYTHON=(rliable==1.2.0)  # published as a source archive only: built into a wheel here

mkdir -p "$WHEELS_DIR"
if [ "$WHEELS_DIR" = .whl ] && git rev-parse --git-dir >/dev/null 2>&1; then
  exclude=$(git rev-parse --git-path info/exclude)
  grep -qxF '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"  # never committed
fi
for package in "${PACKAGES[@]}"; do
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS_DIR" "$package"
done
for package in "${PURE_PYTHON[@]}"; do
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS_DIR" "$package" 2>/dev/null \
    || "$PYTHON" -m pip wheel -q --no-deps -w "$WHEELS_DIR" "$package"
done
ls -la "$WHEELS_DIR"
du -sh "$WHEELS_DIR"
