"""UDADataset: one labelled source sample and one unlabelled target image per item (DAFormer)."""
from __future__ import annotations

import copy

import numpy as np
from mmseg.datasets.builder import DATASETS, build_dataset
from mmseg.datasets.pipelines import LoadAnnotations, LoadImageFromFile, Resize

from .pipelines.pseudo_margins import KEY as VALID_PSEUDO_MASK
from .rare_class_sampling import RareClassSampler

MAX_RECROPS = 10


def _as_dataset(cfg_or_dataset):
    return build_dataset(cfg_or_dataset) if isinstance(cfg_or_dataset, dict) else cfg_or_dataset


def _check_target_crop(target) -> None:
    """A target crop must not look at target labels (DAFormer#6: cat_max_ratio did)."""
    for t in getattr(getattr(target, 'pipeline', None), 'transforms', []):
        if getattr(t, 'cat_max_ratio', 1.0) < 1.0:
            raise ValueError(
                'the target pipeline has RandomCrop(cat_max_ratio<1), which chooses crops from '
                'target labels; remove cat_max_ratio from the target pipeline.')


def _draws_nothing(transform) -> bool:
    """Whether a pipeline step is a pure function of the file (no random draw): loading, and
    a Resize to one fixed scale."""
    if isinstance(transform, (LoadImageFromFile, LoadAnnotations)):
        return True
    return (isinstance(transform, Resize) and transform.ratio_range is None
            and (transform.img_scale is None or len(transform.img_scale) == 1))


class RecropSource:
    """A source data set's pipeline split where its first random draw happens: the decoded and
    resized image is made once per rare-class pick and cropped again from memory.

    DAFormer re-runs the whole pipeline for each of up to 10 re-crops, decoding and resizing
    the same 2560×1440 image again each time. The steps kept in memory draw no random numbers,
    so the re-crops consume exactly the draws (crop offsets, flips) of a full re-run and give
    the same samples.
    """

    def __init__(self, dataset) -> None:
        transforms = dataset.pipeline.transforms
        n = 0
        while n < len(transforms) and _draws_nothing(transforms[n]):
            n += 1
        self.dataset = dataset
        self.decode_steps, self.crop_steps = transforms[:n], transforms[n:]

    @classmethod
    def of(cls, dataset) -> RecropSource | None:
        """None when ``dataset`` is not an mmseg ``CustomDataset`` with a pipeline."""
        needed = ('pipeline', 'img_infos', 'get_ann_info', 'pre_pipeline')
        if not all(hasattr(dataset, a) for a in needed):
            return None
        return cls(dataset) if hasattr(dataset.pipeline, 'transforms') else None

    def decode(self, idx: int) -> dict:
        """``dataset[idx]``'s pipeline up to its first random step."""
        results = dict(img_info=self.dataset.img_infos[idx],
                       ann_info=self.dataset.get_ann_info(idx))
        self.dataset.pre_pipeline(results)
        return self._run(self.decode_steps, results)

    def crop(self, decoded: dict) -> dict | None:
        """The rest of the pipeline on a copy of ``decoded``: one sample."""
        return self._run(self.crop_steps, copy.deepcopy(decoded))

    @staticmethod
    def _run(steps, results: dict | None) -> dict | None:
        for step in steps:  # as mmseg's Compose: a step may drop the sample (None)
            if results is None:
                return None
            results = step(results)
        return results


@DATASETS.register_module()
class UDADataset:
    """Pairs a source dataset with a target dataset.

    ``dataset[i]`` is the source sample (``img``, ``img_metas``, ``gt_semantic_seg``) plus
    ``target_img``, ``target_img_metas`` and, when the target has ``crop_pseudo_margins``,
    ``valid_pseudo_mask``. Target labels are never returned.

    Without rare class sampling, item i pairs source ``i // len(target)`` with target
    ``i % len(target)``. With ``rare_class_sampling=dict(min_pixels, class_temp,
    min_crop_ratio)`` the index is ignored: a class c is drawn with P(c) = softmax((1 - f_c)/T),
    then a source image with more than ``min_pixels`` of c, which is re-cropped up to 10 times
    until the crop holds more than ``min_pixels * min_crop_ratio`` pixels of c (from the image
    decoded once, :class:`RecropSource`); the target image
    is drawn uniformly. Draws use numpy's global RNG (see ``RareClassSampler``).

    ``cfg`` is accepted for DAFormer configs, which pass the whole train config; its
    ``rare_class_sampling`` is used when the argument is not given.
    """

    def __init__(self, source, target, cfg: dict | None = None,
                 rare_class_sampling: dict | None = None):
        self.source, self.target = _as_dataset(source), _as_dataset(target)
        _check_target_crop(self.target)
        self.ignore_index = self.target.ignore_index
        self.CLASSES, self.PALETTE = self.target.CLASSES, self.target.PALETTE
        if self.source.CLASSES != self.target.CLASSES:
            raise ValueError('source and target datasets must share CLASSES, got '
                             f'{len(self.source.CLASSES)} vs {len(self.target.CLASSES)} classes')
        if rare_class_sampling is None and cfg is not None:
            rare_class_sampling = cfg.get('rare_class_sampling')
        self.rcs = None
        if rare_class_sampling is not None:
            if not self.source.data_root:
                raise ValueError('rare class sampling reads <data_root>/sample_class_stats.json: '
                                 'set data_root in the source dataset config')
            self.rcs = RareClassSampler(
                self.source.data_root,
                [info['ann']['seg_map'] for info in self.source.img_infos],
                **rare_class_sampling)
        self._recrop = RecropSource.of(self.source)

    def __len__(self) -> int:
        return len(self.source) * len(self.target)

    def __getitem__(self, idx: int) -> dict:
        if self.rcs is not None:
            source = self.rare_class_source_sample()
            target = self.target[np.random.randint(len(self.target))]
        else:
            source = self.source[idx // len(self.target)]
            target = self.target[idx % len(self.target)]
        return self._pair(source, target)

    def rare_class_source_sample(self, cls: int | None = None) -> dict:
        """A source sample for class ``cls`` (drawn by RCS when None), re-cropped up to
        ``MAX_RECROPS`` times until the crop holds enough pixels of the class."""
        cls = self.rcs.sample_class() if cls is None else cls
        idx = self.rcs.sample_index(cls)
        if self._recrop is None:  # not an mmseg pipeline: load the sample again each time
            def load():
                return self.source[idx]
        else:  # decode once, crop again from memory (the same draws and samples)
            decoded = self._recrop.decode(idx)

            def load():
                return self._recrop.crop(decoded)
        sample = load()
        for _ in range(MAX_RECROPS):
            if self.rcs.crop_has_class(sample['gt_semantic_seg'].data, cls):
                break
            sample = load()
        return sample

    @staticmethod
    def _pair(source: dict, target: dict) -> dict:
        out = dict(source)
        out['target_img_metas'] = target['img_metas']
        out['target_img'] = target['img']
        if VALID_PSEUDO_MASK in target:
            out[VALID_PSEUDO_MASK] = target[VALID_PSEUDO_MASK]
        return out
