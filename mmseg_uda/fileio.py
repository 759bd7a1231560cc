"""Atomic file writes: the one policy for checkpoints, statistics, labels, configs and metrics.

A file is written to a hidden temporary file in the same folder (``.NAME.XXXXXX.tmp``), flushed,
fsynced and renamed over ``NAME`` (``os.replace`` is atomic on POSIX and Windows), and the folder
is fsynced. A process killed during a write leaves at most a stale temporary file, whose name no
data-set scanner or checkpoint finder mistakes for data (hidden, ``.tmp``), next to the previous,
intact file. :func:`remove_stale_temp_files` cleans them up.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

TEMP_SUFFIX = '.tmp'


def is_temp_file(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_write`'s temporary files."""
    return name.startswith('.') and name.endswith(TEMP_SUFFIX)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """``write(f)`` into a temporary file, then rename it to ``path``: ``path`` is either the
    old file or the complete new one, never a partial write."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=TEMP_SUFFIX,
                               dir=path.parent if str(path.parent) else '.')
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp creates 0600; match open()'s mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed writes left in ``folder``; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if is_temp_file(p.name)
             and (p.is_file() or p.is_symlink())]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; directories cannot be opened on Windows.
    if os.name != 'posix':
        return
    fd = os.open(directory if str(directory) else '.', os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
