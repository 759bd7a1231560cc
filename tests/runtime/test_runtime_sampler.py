"""The resumable training stream: sharding, restart at any iteration, per-sample seeds."""
import itertools
import random

import numpy as np
import pytest
import torch
from runtime_helpers import RandomImages

from mmseg_uda.runtime import (
    ResumableInfiniteSampler,
    SampleSeededDataset,
    build_resumable_dataloader,
    capture_rng_state,
)

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_each_epoch_is_a_fresh_permutation():
    sampler = ResumableInfiniteSampler(7, samples_per_gpu=1, seed=3, rank=0, world_size=1)
    stream = [index for index, _ in _take(sampler, 21)]
    epochs = [stream[i:i + 7] for i in (0, 7, 14)]
    assert all(sorted(e) == list(range(7)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]


def test_two_ranks_shard_the_one_rank_stream():
    one = ResumableInfiniteSampler(5, samples_per_gpu=2, seed=1, rank=0, world_size=1)
    ranks = [ResumableInfiniteSampler(5, samples_per_gpu=1, seed=1, rank=r, world_size=2)
             for r in (0, 1)]
    streams = [_take(s, 12) for s in ranks]
    interleaved = [item for pair in zip(*streams) for item in pair]
    assert interleaved == _take(one, 24)


def test_restart_at_iteration_k_continues_the_stream():
    full = ResumableInfiniteSampler(5, samples_per_gpu=2, seed=0, rank=1, world_size=2)
    resumed = ResumableInfiniteSampler(5, samples_per_gpu=2, seed=0, rank=1, world_size=2)
    resumed.set_start_iter(3)
    assert _take(resumed, 10) == _take(full, 16)[6:]


def test_unshuffled_stream_and_distinct_sample_seeds():
    sampler = ResumableInfiniteSampler(4, samples_per_gpu=2, shuffle=False, rank=0,
                                       world_size=1)
    items = _take(sampler, 8)
    assert [i for i, _ in items] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert len({s for _, s in items}) == 8  # epoch 2 draws new crops of the same images


def test_a_sample_depends_on_its_seed_only():
    dataset = SampleSeededDataset(RandomImages())
    a = dataset[(2, 1234)]['img']
    random.random(), np.random.rand(), torch.rand(())  # move the global generators
    b = dataset[(2, 1234)]['img']
    c = dataset[(2, 1235)]['img']
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_loading_a_sample_leaves_the_global_generators_alone():
    before = capture_rng_state()
    SampleSeededDataset(RandomImages())[(2, 99)]
    after = capture_rng_state()
    assert before['python'] == after['python']
    assert np.array_equal(before['numpy'][1], after['numpy'][1])
    assert torch.equal(before['torch_cpu'], after['torch_cpu'])


def test_batches_do_not_depend_on_the_number_of_workers_and_keep_the_main_rng():
    batches = {}
    for workers in (0, 2):
        torch.manual_seed(0)
        loader = build_resumable_dataloader(RandomImages(), samples_per_gpu=2,
                                            workers_per_gpu=workers, seed=5)
        batches[workers] = [b['img'] for b in itertools.islice(loader, 4)]
        # Starting the loader must not draw from the global generator training uses.
        assert torch.equal(torch.get_rng_state(), torch.manual_seed(0).get_state())
    for a, b in zip(batches[0], batches[2]):
        assert torch.equal(a, b)
