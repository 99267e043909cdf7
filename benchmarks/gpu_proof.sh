#!/usr/bin/env bash
# The GPU proof: every GPU figure (benchmarks/gpu_proof.py says which, and against what) in one call
# of at most 8 minutes, results in $OUT/gpu_proof.json and $OUT/gpu_proof.log. It installs nothing
# that is not carried: on the device machine, run benchmarks/gpu_prepare.sh here first and carry
# .whl and .proof-data.
#
#   bash benchmarks/gpu_proof.sh             # on the GPU (the device tool: carry [".whl", ".proof-data"])
#   bash benchmarks/gpu_proof.sh --dry-run   # every item for a few steps on this CPU (tests/test_gpu_proof.py)
#   bash benchmarks/gpu_proof.sh --dry-run --only classify,gan
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
PYTHON=python3
[[ -x .venv/bin/python ]] && PYTHON=$ROOT/.venv/bin/python
export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
if [[ -d .whl ]] && ! "$PYTHON" -c "import litserve, segmentation_models_pytorch" 2>/dev/null; then
    # The device machine: its python3 has torch and most of the stack; the rest comes as carried wheels.
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
[[ -d .proof-data && -z "${TRANSFERLAB_SHARED_DATA:-}" ]] && export TRANSFERLAB_SHARED_DATA=$ROOT/.proof-data
export TRANSFERLAB_OFFLINE=1 TRANSFERLAB_QUIET=1 PYTHONUNBUFFERED=1
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
cd benchmarks
set -o pipefail
timeout 470 "$PYTHON" gpu_proof.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_proof.log"
