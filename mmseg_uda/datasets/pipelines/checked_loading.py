"""Image and label loading that names the file it cannot decode.

mmseg's ``LoadImageFromFile`` and ``LoadAnnotations`` hand a file that OpenCV cannot decode on
as ``None``, and the run dies later with ``'NoneType' object has no attribute 'shape'``, naming
no file. Both are patched here (one documented patch, idempotent) to raise
:class:`CorruptFileError` with the path and what to do.
"""
from __future__ import annotations

import os.path as osp

import cv2
from mmseg.datasets.pipelines import LoadAnnotations, LoadImageFromFile

from ..checks import png_file_cut

HINT = ('Replace the file (re-extract it from the data set archive, then re-run the converter), '
        'list every bad file with `python tools/check_data.py DATA_ROOT`, or set '
        'data.skip_corrupt=True to skip such training samples with a warning.')


class CorruptFileError(RuntimeError):
    """A data file that cannot be decoded; ``path`` names it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f'{path}: cannot be decoded ({reason}). {HINT}')
        self.path = path


def _image_path(results: dict) -> str:
    name = results['img_info']['filename']
    return osp.join(results['img_prefix'], name) if results.get('img_prefix') else name


def _label_path(results: dict) -> str:
    name = results['ann_info']['seg_map']
    return osp.join(results['seg_prefix'], name) if results.get('seg_prefix') else name


def _checked(call, path_of, key: str):
    def load(self, results: dict) -> dict:
        path = path_of(results)
        if png_file_cut(path):
            raise CorruptFileError(path, 'truncated PNG: no IEND chunk')
        try:
            out = call(self, results)
        except (AttributeError, TypeError, ValueError, OSError, cv2.error) as error:
            # OpenCV returns None for an undecodable file; mmseg then fails on None.
            raise CorruptFileError(path, f'{type(error).__name__}: {error}') from None
        if out.get(key) is None:
            raise CorruptFileError(path, 'no pixels decoded')
        return out

    load._blv_uda_checked = True
    return load


def check_file_loading() -> None:
    for cls, path_of, key in ((LoadImageFromFile, _image_path, 'img'),
                              (LoadAnnotations, _label_path, 'gt_semantic_seg')):
        if not getattr(cls.__call__, '_blv_uda_checked', False):
            cls.__call__ = _checked(cls.__call__, path_of, key)


check_file_loading()
