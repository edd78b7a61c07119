#!/usr/bin/env bash
# GPU check: one command, on a machine with an NVIDIA GPU and the repository copied onto it.
#
#   bash scripts/gpu-check.sh
#
# (a) prints the GPU (nvidia-smi) and the torch / CUDA versions;
# (b) runs the quantizer tests on the GPU (`pytest --device cuda`, the default run's marker
#     selection) -> results/gpu_pytest_quantizers.xml (JUnit);
# (c) benchmarks the VQ layer against vector-quantize-pytorch on the GPU, fp32 and bf16, at
#     N = 65,536, D = 64 / 256, K = 16,384 / 65,536 -> results/gpu_bench_layer.json;
# (d) runs the bf16 training tests, tests/test_low_precision.py, on the GPU (a clear message,
#     not a failure, where the file is absent) -> results/gpu_pytest_low_precision.xml;
# and keeps the whole output in results/gpu_check.log. Sized for under 8 minutes on an
# H100/H200 once the environment exists (not yet timed on one); each step has a time limit
# (GPU_CHECK_TESTS_TIMEOUT, GPU_CHECK_BENCH_TIMEOUT, GPU_CHECK_LOW_PRECISION_TIMEOUT, seconds).
#
# Exit status: 0 when every step passed; 1 when a step failed (the others still run, and a
# summary names the failures); 2, with one line, when there is no usable CUDA device.
#
# Environment: VQKIT_PYTHON=/path/to/python uses an existing environment (vqkit importable,
# with the dev and bench extras). Otherwise .venv/bin/python; when .venv is absent it is created
# and the project installed into it from PyPI with the pinned versions, the only thing this
# script installs:
#     python3 -m venv .venv && .venv/bin/pip install -c requirements/lock.txt -e '.[dev,bench]'
# Assumption: requirements/lock.txt pins torch==2.13.0, and on Linux x86_64 the torch wheel PyPI serves
# for that pin is the CUDA build, so the venv gets a GPU-capable torch; the first install
# downloads a few GB and is not counted in the time above. On a machine whose torch must come
# from elsewhere (another CUDA version, no network), install it first and point VQKIT_PYTHON at
# that environment. A CPU-only torch is detected and reported (exit 2).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "gpu-check: no CUDA device here (nvidia-smi is missing or lists no GPU); run it on a GPU machine" >&2
    exit 2
fi

if [[ -n "${VQKIT_PYTHON:-}" ]]; then
    PY=$VQKIT_PYTHON
else
    if [[ ! -x .venv/bin/python ]]; then
        echo "gpu-check: .venv is absent: creating it and installing vqkit[dev,bench] (pinned)"
        python3 -m venv .venv
        .venv/bin/pip install -q -c requirements/lock.txt -e '.[dev,bench]'
    fi
    PY=.venv/bin/python
fi

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    version=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "not importable")
    echo "gpu-check: $PY has torch $version, which cannot use the GPU (a CPU-only build?); install the CUDA build of torch==2.13.0 or set VQKIT_PYTHON" >&2
    exit 2
fi

TESTS_TIMEOUT=${GPU_CHECK_TESTS_TIMEOUT:-240}
BENCH_TIMEOUT=${GPU_CHECK_BENCH_TIMEOUT:-200}
LOW_PRECISION_TIMEOUT=${GPU_CHECK_LOW_PRECISION_TIMEOUT:-90}
# The tests that take the `device` fixture (tests/conftest.py).
QUANTIZER_TESTS=(
    tests/test_contract.py tests/test_vector.py tests/test_residual.py tests/test_product.py
    tests/test_additive.py tests/test_space_filling.py tests/test_curve.py tests/test_search.py
    tests/test_beam.py tests/test_estimators.py tests/test_codebooks.py tests/test_kmeans.py
)
SHAPES=65536x64x16384,65536x256x16384,65536x64x65536,65536x256x65536

failed=()
step() {  # step NAME TIMEOUT COMMAND...: run, time and record one step; never stops the script
    local name=$1 limit=$2 start rc=0
    shift 2
    echo
    echo "== $name (limit ${limit} s): $*"
    start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "== $name: TIMED OUT after ${limit} s"
        failed+=("$name (timed out)")
    elif ((rc != 0)); then
        echo "== $name: FAILED (exit $rc) after $((SECONDS - start)) s"
        failed+=("$name (exit $rc)")
    else
        echo "== $name: passed in $((SECONDS - start)) s"
    fi
}

run_all() {  # (a) to (d) and the summary; its output also goes to results/gpu_check.log
    echo "== (a) versions"
    nvidia-smi
    "$PY" - <<'EOF'
import platform

import torch

print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}")
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i} {torch.cuda.get_device_name(i)}, capability "
          f"{torch.cuda.get_device_capability(i)}, bf16 {torch.cuda.is_bf16_supported()}")
print(f"fp32 matmul precision: {torch.get_float32_matmul_precision()}")
EOF
    git log -1 --format='commit %H %s' 2>/dev/null || echo "commit: not a git checkout"

    step "(b) quantizer tests on cuda" "$TESTS_TIMEOUT" \
        "$PY" -m pytest -q -rfE -p no:cacheprovider --device cuda \
        --junitxml=results/gpu_pytest_quantizers.xml "${QUANTIZER_TESTS[@]}"

    step "(c) layer benchmark on cuda, fp32 and bf16" "$BENCH_TIMEOUT" \
        "$PY" benchmarks/layer_speed.py --device cuda --dtype float32 bfloat16 \
        --shapes "$SHAPES" --out results/gpu_bench_layer.json

    if [[ -f tests/test_low_precision.py ]]; then
        step "(d) bf16 training tests on cuda" "$LOW_PRECISION_TIMEOUT" \
            "$PY" -m pytest -q -rfE -p no:cacheprovider --device cuda \
            --junitxml=results/gpu_pytest_low_precision.xml tests/test_low_precision.py
    else
        echo
        echo "== (d) skipped: tests/test_low_precision.py is not in this checkout (the bf16 training tests come with it)"
    fi

    echo
    if ((${#failed[@]})); then
        printf -v joined '%s; ' "${failed[@]}"
        echo "gpu-check: FAILED: ${joined%; }. Outputs in results/ (gpu_check.log, gpu_pytest_*.xml, gpu_bench_layer.json)"
        exit 1
    fi
    echo "gpu-check: all steps passed; outputs in results/ (gpu_check.log, gpu_pytest_*.xml, gpu_bench_layer.json)"
}

mkdir -p results
rc=0
run_all 2>&1 | tee results/gpu_check.log || rc=${PIPESTATUS[0]}
exit "$rc"
