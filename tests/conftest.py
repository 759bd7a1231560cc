"""Shared pytest setup: register everything and keep CPU tests single-threaded-friendly."""
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
