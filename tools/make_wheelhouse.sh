#!/usr/bin/env bash
# Downloads every wheel the BLV-UDA stack needs, plus the mmcv-full source archive, into one
# folder, for installing with no index (compute nodes without internet, the usual SLURM setup):
#
#   bash tools/make_wheelhouse.sh DIR [--python-version 3.12] [--arch x86_64|aarch64]
#   bash tools/install.sh --wheelhouse DIR            # on the offline machine
#
# The default Python version and platform are this machine's. Binary wheels only (pip cannot
# build another platform's source packages); mmcv-full, which has no wheels for torch 2, comes
# as its source archive and is compiled by tools/install.sh on the target machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
DIR=${1:?usage: tools/make_wheelhouse.sh DIR [--python-version X.Y] [--platform TAG]}
shift
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
ARCH=$(uname -m)
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYVER=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    *) echo "[wheelhouse] unknown option $1" >&2; exit 2 ;;
  esac
done
MMCV_PIN=$(grep -E '^mmcv-full==' requirements.txt | cut -d= -f3)
ABI=cp${PYVER/./}
# pip does not widen a given platform to older manylinux tags: list the ones wheels use
# (glibc >= 2.28 on the target machine).
PLATFORMS=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014 \
           manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1 linux; do
  PLATFORMS+=(--platform "${tag}_$ARCH")
done
mkdir -p "$DIR"
start=$(date +%s)
echo "[wheelhouse] wheels for CPython $PYVER ($ABI) on manylinux/$ARCH (glibc 2.28) into $DIR"
"$PY" -m pip download -q -d "$DIR" --only-binary=:all: --python-version "$PYVER" \
  --implementation cp --abi "$ABI" --abi abi3 --abi none "${PLATFORMS[@]}" \
  -r <(grep -vE '^mmcv-full==' requirements.txt) -r requirements-build.txt -c requirements.txt
echo "[wheelhouse] mmcv-full==$MMCV_PIN source archive"
"$PY" -m pip download -q -d "$DIR" --no-deps --no-binary :all: "mmcv-full==$MMCV_PIN"
echo "[wheelhouse] $(ls "$DIR" | wc -l) files, $(du -sh "$DIR" | cut -f1), in $(( $(date +%s) - start )) s"
echo "[wheelhouse] install with: bash tools/install.sh --wheelhouse $DIR"
