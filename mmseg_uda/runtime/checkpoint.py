"""Checkpoint files that survive crashes: atomic writes, keep-last-K, and finding the latest.

A checkpoint is written to a hidden temporary file in the same directory, flushed, fsynced and
renamed over the final name (``os.replace`` is atomic on POSIX and Windows). A process killed
during a save therefore leaves at most a stale ``.iter_N.pth.*.tmp`` file, which
:func:`find_latest_checkpoint` ignores, next to the previous, intact checkpoints.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from ..fileio import TEMP_SUFFIX, atomic_write
from ..fileio import remove_stale_temp_files as remove_stale_temp_files

CHECKPOINT_NAME = re.compile(r'^iter_(\d+)\.pth$')


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` such that ``path`` is either the old file or the complete
    new one, never a partial write (:func:`mmseg_uda.fileio.atomic_write`)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def update_latest_link(path: str | os.PathLike, link_name: str = 'latest.pth') -> None:
    """Point ``<dir>/latest.pth`` at ``path`` (relative symlink, swapped atomically).

    Where symlinks are not allowed the link is skipped: :func:`find_latest_checkpoint` does
    not need it.
    """
    path = Path(path)
    link = path.parent / link_name
    tmp = path.parent / f'.{link_name}.{os.getpid()}{TEMP_SUFFIX}'
    try:
        tmp.unlink(missing_ok=True)
        os.symlink(path.name, tmp)
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)


def list_checkpoints(work_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of every ``iter_N.pth`` in ``work_dir``, oldest first."""
    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return []
    found = []
    for entry in work_dir.iterdir():
        match = CHECKPOINT_NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def prune_checkpoints(work_dir: str | os.PathLike, keep: int,
                      current: str | os.PathLike | None = None) -> list[Path]:
    """Delete all but ``keep`` checkpoints: ``current`` (the one just written) and the newest
    others. ``keep <= 0`` keeps all.

    Works from the files present, so gaps (an interval changed on resume, a last-good-state
    save) do not stop the cleanup. Returns the deleted paths.
    """
    if keep <= 0:
        return []
    current = Path(current).resolve() if current is not None else None
    others = [p for _, p in list_checkpoints(work_dir) if p.resolve() != current]
    keep_others = keep - 1 if current is not None else keep
    stale = others[:max(0, len(others) - keep_others)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def is_loadable(path: str | os.PathLike) -> bool:
    """Whether ``path`` opens as a complete torch checkpoint with a state dict.

    The file is memory-mapped, so tensors are not read: a truncated or foreign file fails
    while parsing the archive and its pickle, which is cheap even for a 1 GB checkpoint.
    """
    try:
        ckpt = torch.load(path, map_location='cpu', mmap=True, weights_only=True)
    except Exception:  # noqa: BLE001  (any failure means "not usable")
        return False
    return isinstance(ckpt, dict) and 'state_dict' in ckpt


def find_latest_checkpoint(work_dir: str | os.PathLike) -> str | None:
    """The newest loadable ``iter_N.pth`` in ``work_dir`` (``--resume-from auto``), or None.

    Temporary files of interrupted saves never match. An unloadable checkpoint (truncated by a
    full disk, say) is skipped with a warning and the previous one is used.
    """
    for iteration, path in reversed(list_checkpoints(work_dir)):
        if is_loadable(path):
            return str(path)
        warnings.warn(f'{path} (iteration {iteration}) cannot be loaded; falling back to the '
                      'previous checkpoint.', stacklevel=2)
    return None
