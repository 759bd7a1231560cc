"""Change the image scales and crop size of a data config after ``_base_`` inheritance.

The dataset base configs build their pipelines when they are read, so overriding ``crop_size``
at the top level of a derived config does not reach them; this edits the pipelines inside
``cfg.data`` instead (and the top-level copies a base file leaves, so the config reads true).
"""
from __future__ import annotations

from collections.abc import Iterable, MutableMapping


def _transforms(pipeline: Iterable) -> Iterable[MutableMapping]:
    for t in pipeline:
        yield t
        yield from _transforms(t.get('transforms', []))


def _set(pipeline, scale=None, crop_size=None, multi_scale=None) -> None:
    for t in _transforms(pipeline):
        if t['type'] == 'Resize' and scale is not None and 'img_scale' in t:
            t['img_scale'] = tuple(scale)
        elif t['type'] == 'RandomCrop' and crop_size is not None:
            t['crop_size'] = tuple(crop_size)
        elif t['type'] == 'Pad' and crop_size is not None and 'size' in t:
            t['size'] = tuple(crop_size)
        elif t['type'] == 'MultiScaleFlipAug' and multi_scale is not None:
            t['img_scale'] = tuple(multi_scale)


def scale_pipelines(cfg: MutableMapping, source_scale: tuple[int, int] | None = None,
                    target_scale: tuple[int, int] | None = None,
                    crop_size: tuple[int, int] | None = None,
                    test_scale: tuple[int, int] | None = None) -> MutableMapping:
    """Edit ``cfg.data`` in place and return ``cfg``.

    - ``source_scale`` / ``target_scale``: (width, height) of Resize in the source / target
      training pipelines (DAFormer: (1280, 720) GTA, (1280, 760) SYNTHIA, (1024, 512) target);
      a single-domain config's labelled training set takes ``source_scale``;
    - ``crop_size``: (height, width) of RandomCrop and Pad in both training pipelines;
    - ``test_scale``: (width, height) of MultiScaleFlipAug in val and test; defaults to
      ``target_scale``.
    Arguments left as None are not changed.
    """
    data = cfg['data']
    train = data['train']
    test_scale = test_scale or target_scale
    if 'source' in train:
        _set(train['source']['pipeline'], source_scale, crop_size)
        _set(train['target']['pipeline'], target_scale, crop_size)
    else:
        _set(train['pipeline'], source_scale, crop_size)
    for split in ('val', 'test'):
        if split in data:
            _set(data[split]['pipeline'], multi_scale=test_scale)
    for name, scale in (('source_train_pipeline', source_scale),
                        ('target_train_pipeline', target_scale),
                        ('train_pipeline', source_scale)):
        if name in cfg:
            _set(cfg[name], scale, crop_size)
    if 'test_pipeline' in cfg:
        _set(cfg['test_pipeline'], multi_scale=test_scale)
    if 'crop_size' in cfg and crop_size is not None:
        cfg['crop_size'] = tuple(crop_size)
    return cfg


def train_crop_size(cfg: MutableMapping) -> list[int] | None:
    """The RandomCrop size (height, width) of the training pipeline (a UDA config's source
    pipeline), or None when it has none: the reading counterpart of :func:`scale_pipelines`."""
    train = cfg.get('data', {}).get('train', {})
    train = train.get('source', train)
    for t in _transforms(train.get('pipeline', [])):
        if t.get('type') == 'RandomCrop':
            return list(t['crop_size'])
    return None


def without_labels(pipeline: Iterable[MutableMapping]) -> list[dict]:
    """A labelled training pipeline for unlabelled images: no label loading, no crop chosen
    from labels (``cat_max_ratio``, DAFormer#6), no label collected; the same image steps."""
    out = []
    for t in pipeline:
        t = dict(t)
        if t['type'] == 'LoadAnnotations':
            continue
        if t['type'] == 'RandomCrop':
            t.pop('cat_max_ratio', None)
        elif t['type'] == 'Pad':
            t.pop('seg_pad_val', None)
        elif t['type'] == 'Collect':
            t['keys'] = [k for k in t['keys'] if k != 'gt_semantic_seg']
        out.append(t)
    return out
