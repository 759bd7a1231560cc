"""Shared pytest setup and fixtures: registration, fixed seeds, the tiny data set, one thread."""
import os

import pytest
import torch

os.environ.setdefault('MPLBACKEND', 'Agg')

import mmseg_uda  # noqa: E402,F401  (registers datasets, models, losses; applies compat fixes)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same global RNG state, so statistical checks are fixed."""
    import random

    import numpy as np
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory) -> str:
    """Root of a tiny generated data set (gta/, synthia/, cityscapes/), converted. Read-only:
    tests that change files work on a copy (``data_helpers.copy_domain``)."""
    import os.path as osp

    from mmseg_uda.datasets.conversion import convert_cityscapes, convert_gta, convert_synthia
    from mmseg_uda.datasets.synthetic import SCALES, generate
    root = str(tmp_path_factory.mktemp('synthetic'))
    generate(root, seed=0, spec=SCALES['tiny'])
    convert_gta(osp.join(root, 'gta'))
    convert_synthia(osp.join(root, 'synthia'))
    convert_cityscapes(osp.join(root, 'cityscapes'))
    return root


@pytest.fixture(scope='module')
def one_torch_thread():
    """One intra-op thread for a module's tests (``pytestmark =
    pytest.mark.usefixtures('one_torch_thread')``): on a loaded 2-core machine, two spinning
    threads per op make tiny models ~40x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
