"""Check that the active Python environment holds the pinned BLV-UDA stack.

    python tools/check_env.py [--keep-torch] [--gpu]

Exit status 0 when complete, 1 otherwise (with the missing pieces listed). Used by
tools/install.sh to stay idempotent, and by users to diagnose an environment. ``--gpu`` also
reports what torch sees of the GPUs (and fails when it sees none); ``--keep-torch`` accepts any
installed torch that mmcv-full 1.7.2 compiles against instead of the pinned one.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Written into mmcv's package folder after a build, so a later torch change is detected.
BUILD_RECORD = '.blv_uda_built_against_torch'
# The torch releases --keep-torch accepts: this project needs torch >= 2.4 (safe-globals
# checkpoint loading, torch.amp.GradScaler(device)); torch >= 2.14's headers need C++20 and
# mmcv-full 1.7.2's setup.py hard-codes -std=c++17. Only the pinned release is tested.
KEEP_TORCH_RANGE = ((2, 4), (2, 14))


def pins() -> dict[str, str]:
    """Exact pins (name==version) from requirements.txt."""
    out = {}
    for line in (REPO / 'requirements.txt').read_text().splitlines():
        m = re.match(r'^([A-Za-z0-9_.-]+)==([^\s#]+)', line.strip())
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _mmcv_record_path() -> Path | None:
    try:
        files = md.files('mmcv-full') or []
    except md.PackageNotFoundError:
        return None
    for f in files:
        if str(f).replace('\\', '/') == 'mmcv/__init__.py':
            return Path(f.locate()).parent / BUILD_RECORD
    return None


def check_mmcv(p: dict[str, str]) -> list[str]:
    problems = []
    v = _version('mmcv-full')
    if v != p['mmcv-full']:
        return [f'mmcv-full {v} installed, {p["mmcv-full"]} required']
    record = _mmcv_record_path()
    torch_v = _version('torch')
    built_for = record.read_text().strip() if record and record.exists() else None
    if built_for != torch_v:
        problems.append(f'mmcv-full was built against torch {built_for}, torch {torch_v} is '
                        'installed')
    try:
        import mmcv.ops  # noqa: F401  compiled extension, fails on an ABI mismatch
    except Exception as e:  # noqa: BLE001
        problems.append(f'mmcv.ops does not import ({e}); rebuild mmcv-full')
    return problems


def _release(version: str) -> tuple[int, int]:
    major, minor = re.match(r'(\d+)\.(\d+)', version).groups()
    return int(major), int(minor)


def check_torch(p: dict[str, str], keep_torch: bool = False) -> list[str]:
    """The pinned torch/torchvision, or with ``keep_torch`` any installed pair in
    ``KEEP_TORCH_RANGE``."""
    if not keep_torch:
        return [f'{d} {v} installed, {p[d]} required' for d in ('torch', 'torchvision')
                if (v := _version(d)) is None or v.split('+')[0] != p[d]]
    v = _version('torch')
    (lo_major, lo_minor), (hi_major, hi_minor) = KEEP_TORCH_RANGE
    allowed = f'>={lo_major}.{lo_minor},<{hi_major}.{hi_minor}'
    if v is None:
        return [f'--keep-torch: no torch is installed (mmcv-full 1.7.2 needs torch{allowed})']
    if not KEEP_TORCH_RANGE[0] <= _release(v) < KEEP_TORCH_RANGE[1]:
        return [f'--keep-torch: torch {v} is installed, mmcv-full 1.7.2 compiles against '
                f'torch{allowed} only; install the pin ({p["torch"]}) instead']
    if _version('torchvision') is None:
        return [f'--keep-torch: torch {v} is installed but torchvision is not; install the '
                'torchvision release built for it (timm and mmcv import torchvision)']
    return []


def check_all(p: dict[str, str], keep_torch: bool = False) -> list[str]:
    problems = check_torch(p, keep_torch)
    v = _version('mmsegmentation')
    if v != p['mmsegmentation']:
        problems.append(f'mmsegmentation {v} installed, {p["mmsegmentation"]} required')
    if problems:
        return problems
    problems += check_mmcv(p)
    for mod in ('timm', 'kornia', 'cityscapesscripts', 'tqdm', 'pytest', 'scipy', 'matplotlib'):
        try:
            __import__(mod)
        except Exception as e:  # noqa: BLE001
            problems.append(f'{mod} does not import ({e})')
    try:
        import blv_patches
        import mmseg_uda  # noqa: F401

        if Path(blv_patches.__file__).resolve().parents[1] != REPO:
            problems.append(f'blv_patches is imported from {blv_patches.__file__}, not this '
                            'checkout')
    except Exception as e:  # noqa: BLE001
        problems.append(f'the project is not installed in editable mode ({e})')
    return problems


def describe_mmcv() -> str:
    """What the installed mmcv-full's compiled ops are: compiler and CUDA (or CPU only)."""
    from mmcv.ops import get_compiler_version, get_compiling_cuda_version

    cuda = get_compiling_cuda_version()
    kind = 'CPU ops only' if cuda in ('not available', '') else f'CUDA {cuda} ops'
    return f'mmcv-full {_version("mmcv-full")}, {kind}, compiled with {get_compiler_version()}'


def gpu_report() -> tuple[list[str], list[str]]:
    """Lines describing what torch sees of the GPUs, and the problems (none visible)."""
    import os

    import torch

    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    lines = [f'torch {torch.__version__}, built with CUDA {torch.version.cuda}, cuDNN {cudnn}',
             f'CUDA_VISIBLE_DEVICES={visible!r}' if visible is not None
             else 'CUDA_VISIBLE_DEVICES is not set']
    if not torch.cuda.is_available():
        from mmseg_uda.runtime.device import cuda_unavailable_reason
        return lines, [f'no GPU visible to torch: {cuda_unavailable_reason()}']
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        lines.append(f'GPU {i}: {props.name}, {props.total_memory / 2**30:.1f} GiB, '
                     f'compute capability {props.major}.{props.minor}, '
                     f'bf16 {"yes" if props.major >= 8 else "no (fp16 only)"}, '
                     f'TF32 {"yes" if props.major >= 8 else "no"}')
    try:
        lines.append(describe_mmcv())
    except Exception as e:  # noqa: BLE001
        lines.append(f'mmcv ops: {e}')
    return lines, []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quiet', action='store_true')
    ap.add_argument('--only', choices=['mmcv', 'torch'], help='check one piece only')
    ap.add_argument('--keep-torch', action='store_true',
                    help='accept the installed torch if mmcv-full 1.7.2 compiles against it')
    ap.add_argument('--gpu', action='store_true', help='also report what torch sees of the GPUs')
    ap.add_argument('--record-mmcv-build', action='store_true',
                    help='record the installed torch version as the one mmcv-full was built '
                         'against')
    ap.add_argument('--describe-mmcv', action='store_true',
                    help="print what the installed mmcv-full's ops were compiled for")
    args = ap.parse_args()
    p = pins()
    if args.record_mmcv_build:
        record = _mmcv_record_path()
        if record is None:
            print('mmcv-full is not installed', file=sys.stderr)
            return 1
        record.write_text(_version('torch') or '')
        return 0
    if args.describe_mmcv:
        print(describe_mmcv())
        return 0
    if args.only == 'mmcv':
        problems = check_mmcv(p)
    elif args.only == 'torch':
        problems = check_torch(p, args.keep_torch)
    else:
        problems = check_all(p, args.keep_torch)
    if args.gpu:
        lines, gpu_problems = gpu_report()
        print('\n'.join(lines))
        problems += gpu_problems
    if problems and not args.quiet:
        print('environment incomplete:\n  ' + '\n  '.join(problems), file=sys.stderr)
    elif not problems and not args.quiet:
        print('environment OK')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
