"""A NaN or inf loss stops training, names the term and the iteration, and saves the last
good state first."""
import math

import pytest
import torch
from runtime_helpers import assert_nested_equal, load, make_runner, train

from mmseg_uda.runtime import NonFiniteLossError, check_finite_losses

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def test_error_names_the_term_and_iteration_after_the_callback():
    calls = []
    losses = {'src.decode.loss_seg': 0.7, 'src.loss_imnet_feat_dist': torch.tensor([0.1, math.inf])}
    with pytest.raises(NonFiniteLossError,
                       match=r"'src.loss_imnet_feat_dist' is inf at iteration 41") as info:
        check_finite_losses(losses, 41, on_nonfinite=calls.append)
    assert calls == [info.value]
    assert (info.value.term, info.value.iteration) == ('src.loss_imnet_feat_dist', 41)


def test_nan_float_is_caught_and_finite_losses_pass():
    check_finite_losses({'a': 1.0, 'b': torch.zeros(3)}, 0)
    with pytest.raises(NonFiniteLossError, match="'mix.loss' is nan at iteration 0"):
        check_finite_losses({'a': 1.0, 'mix.loss': float('nan')}, 0)


def test_runner_saves_the_state_before_the_failing_iteration(tmp_path):
    clean, clean_loader = make_runner(tmp_path / 'clean', 6)
    train(clean, clean_loader)

    failing, loader = make_runner(tmp_path / 'nan', 6, model_cfg=dict(nan_at=3),
                                  interval=100)
    with pytest.raises(NonFiniteLossError, match="'src.loss' is nan at iteration 3"):
        train(failing, loader)
    last_good = tmp_path / 'nan' / 'iter_3.pth'
    saved, reference = load(last_good), load(tmp_path / 'clean' / 'iter_3.pth')
    # Weights, BN statistics (restored after the failing forward), optimizer, generators and
    # the iteration counter equal those of a clean run after 3 iterations.
    for key in ('state_dict', 'optimizer', 'training_state'):
        assert_nested_equal(saved[key], reference[key], key)
    assert all(torch.isfinite(t).all() for t in saved['state_dict'].values())

    resumed, loader = make_runner(tmp_path / 'nan', 6)
    train(resumed, loader, resume_from=str(last_good))
    for key, value in clean.module.state_dict().items():
        assert torch.equal(value, resumed.module.state_dict()[key]), key
