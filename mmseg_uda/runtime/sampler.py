"""A training data stream that restarts at exactly the next batch, on any number of ranks.

mmseg's loaders cannot resume mid-epoch: the sampler restarts its epoch, and the random crops,
flips and rare-class draws come from each worker's generator, seeded once when the worker
starts. Here every sample is identified by its position ``p`` in one endless global stream:

- the dataset index at ``p`` comes from a permutation of epoch ``p // N`` seeded by
  ``(seed, epoch)``;
- the sample's own randomness (pipeline and rare class sampling) is drawn with Python's, numpy's
  and torch's CPU generators seeded by ``(seed, p)``, whichever process or worker loads it.

Iteration ``k`` on rank ``r`` takes positions ``k·G + r·b … k·G + r·b + b − 1`` (``b`` samples
per GPU, ``G = b·world_size``): ranks shard the same permutation, and a 2-process run sees
exactly the samples of a 1-process run with the same global batch.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from functools import partial
from typing import Any

import torch
from mmcv.parallel import collate
from mmcv.runner import get_dist_info
from torch.utils.data import DataLoader, Dataset, Sampler

from .rng import derive_seed, seeded_host_rng

_PERMUTATION, _SAMPLE = 0, 1  # domain tags, so epoch and sample seeds never coincide


class ResumableInfiniteSampler(Sampler):
    """Endless ``(dataset index, sample seed)`` pairs for iteration-based training.

    Call :meth:`set_start_iter` before iterating to start at a given iteration (resume).
    """

    def __init__(self, dataset_size: int, samples_per_gpu: int, seed: int = 0,
                 shuffle: bool = True, rank: int | None = None,
                 world_size: int | None = None, start_iter: int = 0) -> None:
        if dataset_size < 1:
            raise ValueError('The training dataset is empty: check data.train in the config.')
        dist_rank, dist_world = get_dist_info()
        self.dataset_size = dataset_size
        self.samples_per_gpu = samples_per_gpu
        self.seed = seed
        self.shuffle = shuffle
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world if world_size is None else world_size
        self.start_iter = start_iter
        self._epoch, self._permutation = -1, None

    def set_start_iter(self, start_iter: int) -> None:
        self.start_iter = start_iter

    def state_dict(self) -> dict[str, int]:
        """What must match on resume for the stream to continue exactly."""
        return dict(dataset_size=self.dataset_size, samples_per_gpu=self.samples_per_gpu,
                    seed=self.seed, shuffle=int(self.shuffle), world_size=self.world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        global_batch = self.samples_per_gpu * self.world_size
        iteration = self.start_iter
        while True:
            first = iteration * global_batch + self.rank * self.samples_per_gpu
            for position in range(first, first + self.samples_per_gpu):
                yield self.index_at(position), derive_seed(self.seed, _SAMPLE, position)
            iteration += 1

    def index_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.dataset_size)
        if not self.shuffle:
            return offset
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, _PERMUTATION, epoch))
            self._epoch = epoch
            self._permutation = torch.randperm(self.dataset_size, generator=generator).tolist()
        return self._permutation[offset]

    def __len__(self) -> int:
        # Nominal epoch length per rank; the stream itself never ends.
        return -(-self.dataset_size // self.world_size)


MAX_SKIPPED = 10  # consecutive undecodable samples before skip_corrupt gives up


class SampleSeededDataset(Dataset):
    """Loads ``dataset[index]`` with the host generators seeded by the sample's seed.

    With ``skip_corrupt``, a sample whose file cannot be decoded (``CorruptFileError``) is
    logged and replaced by the next index, with the same seed, so the replacement is
    deterministic too. By default the error stops the run: skipping silently hides data loss.
    """

    def __init__(self, dataset: Dataset, skip_corrupt: bool = False) -> None:
        self.dataset = dataset
        self.skip_corrupt = skip_corrupt

    def __getitem__(self, item: tuple[int, int]) -> Any:
        from mmseg_uda.datasets.pipelines import CorruptFileError

        index, sample_seed = item
        for attempt in range(MAX_SKIPPED + 1):
            try:
                with seeded_host_rng(sample_seed):
                    return self.dataset[(index + attempt) % len(self.dataset)]
            except CorruptFileError as error:
                if not self.skip_corrupt or attempt == MAX_SKIPPED:
                    raise
                warnings.warn(f'data.skip_corrupt: skipped a training sample: {error.path} '
                              'cannot be decoded', stacklevel=2)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        # CLASSES, PALETTE, ... of the wrapped dataset; guard against recursion while unpickling.
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)


def build_resumable_dataloader(dataset: Dataset, samples_per_gpu: int, workers_per_gpu: int,
                               seed: int = 0, shuffle: bool = True, pin_memory: bool = False,
                               persistent_workers: bool = True, skip_corrupt: bool = False,
                               **_: Any) -> DataLoader:
    """The training loader of ``ResumableIterBasedRunner``: one per rank, ``samples_per_gpu``
    samples per batch. Extra mmseg loader keys (e.g. ``drop_last``) are accepted and ignored:
    the stream is endless. ``skip_corrupt``: see :class:`SampleSeededDataset`."""
    sampler = ResumableInfiniteSampler(len(dataset), samples_per_gpu, seed=seed, shuffle=shuffle)
    return DataLoader(
        SampleSeededDataset(dataset, skip_corrupt),
        batch_size=samples_per_gpu,
        sampler=sampler,
        num_workers=workers_per_gpu,
        collate_fn=partial(collate, samples_per_gpu=samples_per_gpu),
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and workers_per_gpu > 0,
        # Creating an iterator draws a base seed; its own generator keeps the global RNG intact.
        generator=torch.Generator().manual_seed(seed),
    )
