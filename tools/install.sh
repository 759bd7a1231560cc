#!/usr/bin/env bash
# Brings the active Python environment to a working BLV-UDA stack in one command.
# Idempotent: when tools/check_env.py finds everything in place it exits at once.
#
# mmcv-full has no wheels for torch 2.x, so it is compiled here against the pinned torch.
# pip's wheel cache does not know which torch a cached mmcv-full wheel was built for, so the
# build never reads or writes that cache (--no-cache-dir), and the build records the torch
# version it was compiled against; check_env.py rebuilds when that record disagrees.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
TORCH_PIN=$(grep -E '^torch==' requirements.txt | cut -d= -f3)
TV_PIN=$(grep -E '^torchvision==' requirements.txt | cut -d= -f3)
MMCV_PIN=$(grep -E '^mmcv-full==' requirements.txt | cut -d= -f3)

if $PY tools/check_env.py --quiet; then
  echo "[install] environment already complete (torch $TORCH_PIN, mmcv-full $MMCV_PIN)"
  exit 0
fi

start=$(date +%s)
echo "[install] torch==$TORCH_PIN torchvision==$TV_PIN"
$PY -m pip install -q "torch==$TORCH_PIN" "torchvision==$TV_PIN"
$PY -m pip install -q "setuptools<81" wheel ninja

if ! $PY tools/check_env.py --quiet --only mmcv; then
  echo "[install] compiling mmcv-full==$MMCV_PIN with CPU ops against torch $TORCH_PIN (8-15 min on 2 cores)"
  $PY -m pip uninstall -y -q mmcv-full mmcv 2>/dev/null || true
  MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    $PY -m pip install --no-build-isolation --no-cache-dir --no-binary mmcv-full "mmcv-full==$MMCV_PIN"
  $PY tools/check_env.py --record-mmcv-build
fi

echo "[install] remaining requirements"
$PY -m pip install -q -r requirements.txt
$PY -m pip install -q --no-deps --no-build-isolation -e .
$PY tools/check_env.py
echo "[install] done in $(( $(date +%s) - start )) s"
