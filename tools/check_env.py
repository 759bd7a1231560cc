"""Check that the active Python environment holds the pinned BLV-UDA stack.

Exit status 0 when complete, 1 otherwise (with the missing pieces listed). Used by
tools/install.sh to stay idempotent, and by users to diagnose an environment.
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
        problems.append(f'mmcv-full was built against torch {built_for}, torch {torch_v} is installed')
    try:
        import mmcv.ops  # noqa: F401  compiled extension, fails on an ABI mismatch
    except Exception as e:  # noqa: BLE001
        problems.append(f'mmcv.ops does not import ({e}); rebuild mmcv-full')
    return problems


def check_all(p: dict[str, str]) -> list[str]:
    problems = []
    for dist in ('torch', 'torchvision', 'mmsegmentation'):
        v = _version(dist)
        if v is None or v.split('+')[0] != p[dist]:
            problems.append(f'{dist} {v} installed, {p[dist]} required')
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
            problems.append(f'blv_patches is imported from {blv_patches.__file__}, not this checkout')
    except Exception as e:  # noqa: BLE001
        problems.append(f'the project is not installed in editable mode ({e})')
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--quiet', action='store_true')
    ap.add_argument('--only', choices=['mmcv'], help='check one piece only')
    ap.add_argument('--record-mmcv-build', action='store_true',
                    help='record the installed torch version as the one mmcv-full was built against')
    args = ap.parse_args()
    p = pins()
    if args.record_mmcv_build:
        record = _mmcv_record_path()
        if record is None:
            print('mmcv-full is not installed', file=sys.stderr)
            return 1
        record.write_text(_version('torch') or '')
        return 0
    problems = check_mmcv(p) if args.only == 'mmcv' else check_all(p)
    if problems and not args.quiet:
        print('environment incomplete:\n  ' + '\n  '.join(problems), file=sys.stderr)
    elif not problems and not args.quiet:
        print('environment OK')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
