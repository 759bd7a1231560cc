#!/usr/bin/env bash
# Brings the active Python environment to a working BLV-UDA stack in one command.
#
#   bash tools/install.sh [--wheelhouse DIR] [--keep-torch]
#
#   --wheelhouse DIR  install with no package index, from DIR (made by `make wheelhouse`);
#                     for compute nodes without internet.
#   --keep-torch      keep the torch/torchvision already installed (e.g. a site-provided build)
#                     if mmcv-full 1.7.2 compiles against it, instead of installing the pin.
#
# Idempotent: when tools/check_env.py finds everything in place it exits at once.
#
# mmcv-full has no wheels for torch 2.x, so it is compiled here against the installed torch.
# pip's wheel cache does not know which torch a cached mmcv-full wheel was built for, so the
# build never reads or writes that cache (--no-cache-dir), and the build records the torch
# version it was compiled against; check_env.py rebuilds when that record disagrees.
#
# The build always makes mmcv's CPU ops, also on GPU machines: this project uses no mmcv CUDA
# op (mmseg only needs mmcv._ext to import). mmcv's setup.py compiles every CUDA kernel
# whenever torch.cuda.is_available(), whatever FORCE_CUDA says, and that needs a CUDA toolkit
# matching torch's CUDA; so the GPU is hidden from the build (CUDA_VISIBLE_DEVICES=).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
WHEELHOUSE=""
KEEP_TORCH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheelhouse) WHEELHOUSE=${2:?--wheelhouse needs a folder}; shift 2 ;;
    --wheelhouse=*) WHEELHOUSE=${1#*=}; shift ;;
    --keep-torch) KEEP_TORCH=1; shift ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "[install] unknown option $1 (see: bash tools/install.sh --help)" >&2; exit 2 ;;
  esac
done

TORCH_PIN=$(grep -E '^torch==' requirements.txt | cut -d= -f3)
TV_PIN=$(grep -E '^torchvision==' requirements.txt | cut -d= -f3)
MMCV_PIN=$(grep -E '^mmcv-full==' requirements.txt | cut -d= -f3)
CHECK=("$PY" tools/check_env.py)
[ "$KEEP_TORCH" = 1 ] && CHECK+=(--keep-torch)

PIP=("$PY" -m pip install -q)
if [ -n "$WHEELHOUSE" ]; then
  if [ ! -d "$WHEELHOUSE" ]; then
    echo "[install] --wheelhouse $WHEELHOUSE: no such folder; make one with" \
         "'make wheelhouse DIR=$WHEELHOUSE' on a machine with internet" >&2
    exit 1
  fi
  WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
  PIP+=(--no-index --find-links "$WHEELHOUSE")
  echo "[install] offline: every package from $WHEELHOUSE, no index"
fi

if "${CHECK[@]}" --quiet; then
  echo "[install] environment already complete (torch $("$PY" -c 'import torch; print(torch.__version__)'), mmcv-full $MMCV_PIN)"
  exit 0
fi

start=$(date +%s)
if [ "$KEEP_TORCH" = 1 ]; then
  "${CHECK[@]}" --only torch  # says why when the installed torch cannot be kept
  echo "[install] keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  echo "[install] torch==$TORCH_PIN torchvision==$TV_PIN"
  "${PIP[@]}" "torch==$TORCH_PIN" "torchvision==$TV_PIN"
fi
"${PIP[@]}" -r requirements-build.txt -c requirements.txt

if ! "${CHECK[@]}" --quiet --only mmcv; then
  NPROC=$(nproc)
  JOBS=${MAX_JOBS:-$(( NPROC < 8 ? NPROC : 8 ))}  # each compile job takes ~1 GB
  echo "[install] building mmcv-full==$MMCV_PIN from source: CPU ops only, GPU hidden from" \
       "the build (CUDA_VISIBLE_DEVICES=), MAX_JOBS=$JOBS (8-15 min on 2 cores)"
  "$PY" -m pip uninstall -y -q mmcv-full mmcv 2>/dev/null || true
  CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=$JOBS \
    "${PIP[@]}" --no-build-isolation --no-cache-dir --no-binary mmcv-full "mmcv-full==$MMCV_PIN"
  "$PY" tools/check_env.py --record-mmcv-build
  echo "[install] built: $("$PY" tools/check_env.py --describe-mmcv)"
fi

echo "[install] remaining requirements"
if [ "$KEEP_TORCH" = 1 ]; then
  "${PIP[@]}" -r <(grep -vE '^(torch|torchvision)==' requirements.txt)
else
  "${PIP[@]}" -r requirements.txt
fi
"${PIP[@]}" --no-deps --no-build-isolation -e .
"${CHECK[@]}"
echo "[install] done in $(( $(date +%s) - start )) s"
