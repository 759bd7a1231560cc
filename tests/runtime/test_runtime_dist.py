"""Launchers and the collectives of self-stepping data-parallel training (2 gloo processes)."""
import os
import stat

import pytest
import torch
from mmcv.parallel import DataContainer, is_module_wrapper
from runtime_helpers import run_on_ranks

from mmseg_uda.runtime import (
    SelfSyncDistributedDataParallel,
    TrainStepper,
    average_gradients,
    init_distributed,
    slurm_environment,
    sum_over_ranks,
)

pytestmark = pytest.mark.usefixtures('one_torch_thread')

SLURM = dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_LOCALID='1',
             SLURM_NODELIST='gpu[03-04]', SLURM_JOB_ID='1234567')


@pytest.fixture
def fake_scontrol(tmp_path, monkeypatch):
    script = tmp_path / 'scontrol'
    script.write_text('#!/bin/sh\n[ "$1 $2 $3" = "show hostnames gpu[03-04]" ] && '
                      'printf "gpu03\\ngpu04\\n"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv('PATH', f'{tmp_path}{os.pathsep}{os.environ["PATH"]}')


def test_slurm_variables_become_torch_env(fake_scontrol):
    env = slurm_environment(SLURM)
    assert env == dict(RANK='5', WORLD_SIZE='8', LOCAL_RANK='1', MASTER_ADDR='gpu03',
                       MASTER_PORT='24567')  # 20000 + job id mod 10000, the same in every task


def test_slurm_keeps_an_explicit_master(fake_scontrol):
    env = slurm_environment({**SLURM, 'MASTER_ADDR': 'login1', 'MASTER_PORT': '1234'})
    assert (env['MASTER_ADDR'], env['MASTER_PORT']) == ('login1', '1234')


def test_slurm_without_its_variables_says_how_to_start():
    with pytest.raises(RuntimeError, match='SLURM_NTASKS.*srun'):
        slurm_environment(dict(SLURM_PROCID='0', SLURM_NODELIST='n1'))


def test_unknown_launcher_and_missing_torchrun_env(monkeypatch):
    with pytest.raises(ValueError, match='none, pytorch or slurm'):
        init_distributed('mpi')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match='RANK is not set.*torchrun'):
        init_distributed('pytorch')


def _gradient_cases(rank, world_size):
    only_rank1, everywhere, nowhere = (torch.nn.Parameter(torch.zeros(2)) for _ in range(3))
    everywhere.grad = torch.full((2,), float(rank + 1))
    if rank == 1:
        only_rank1.grad = torch.tensor([4.0, 6.0])
    average_gradients([only_rank1, everywhere, nowhere])
    matrix = sum_over_ranks(torch.full((3, 3), rank + 1, dtype=torch.int64))
    return everywhere.grad, only_rank1.grad, nowhere.grad, matrix


@pytest.mark.integration
def test_gradients_are_averaged_like_ddp():
    for everywhere, only_rank1, nowhere, matrix in run_on_ranks(_gradient_cases, 2):
        assert torch.equal(everywhere, torch.full((2,), 1.5))
        assert torch.equal(only_rank1, torch.tensor([2.0, 3.0]))  # rank 0 contributes zeros
        assert nowhere is None  # the optimizer skips it, as in one process
        assert torch.equal(matrix, torch.full((3, 3), 3))


class _Regressor(torch.nn.Module):
    """Steps itself, with two backward passes per iteration like DACS."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)
        self.stepper = TrainStepper()

    def train_step(self, batch, optimizer):
        optimizer.zero_grad()
        x, meta = batch['x'], batch['meta']
        assert isinstance(meta, list) and meta[0]['tag'] == 'ok'  # DataContainer unwrapped
        first = self.linear(x).pow(2).mean()
        self.stepper.backward(first)
        second = (self.linear(x.flip(0)) - 1).abs().mean()
        self.stepper.backward(second)
        self.stepper.step(optimizer)
        return dict(loss=(first + second).item())


def _train_regressor(rank, world_size, steps=3):
    torch.manual_seed(rank)  # different inits: the wrapper must broadcast rank 0's
    data = torch.randn(steps, 4, 4, generator=torch.Generator().manual_seed(0))
    model = _Regressor()
    if world_size > 1:
        model = SelfSyncDistributedDataParallel(model)
        assert is_module_wrapper(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    per_rank = 4 // world_size
    losses = []
    for step in range(steps):
        x = data[step, rank * per_rank:(rank + 1) * per_rank]
        meta = DataContainer([[dict(tag='ok')] * per_rank], cpu_only=True)
        if world_size > 1:
            out = model.train_step(dict(x=x, meta=meta), optimizer)
        else:
            out = model.train_step(dict(x=x, meta=[dict(tag='ok')] * per_rank), optimizer)
        losses.append(out['loss'])
    return losses, [p.detach().clone() for p in model.parameters()]


@pytest.mark.integration
def test_two_processes_match_one_process_with_the_same_global_batch():
    # Each of the losses is a per-sample mean, so 2×2 samples average to the 1×4 loss.
    single_losses, single_weights = _train_regressor(0, 1)
    (losses0, weights0), (losses1, weights1) = run_on_ranks(_train_regressor, 2)
    for l0, l1, single in zip(losses0, losses1, single_losses):
        assert (l0 + l1) / 2 == pytest.approx(single, rel=1e-5)
    for a, b in zip(weights0, weights1):
        assert torch.equal(a, b)  # replicas stay bit-identical
    for a, b in zip(weights0, single_weights):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


class _InnerBackward(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def train_step(self, x, optimizer=None):
        loss = self.linear(x).pow(2).mean()
        loss.backward()  # inside train_step, as DACS does
        return dict(log_vars=dict(loss=loss.item()))


def _mmddp_inner_backward(rank, world_size):
    from mmcv.parallel import MMDistributedDataParallel
    torch.manual_seed(0)
    model = MMDistributedDataParallel(_InnerBackward(), broadcast_buffers=False)
    model.train_step(torch.full((2, 3), float(rank + 1)))
    return model.module.linear.weight.grad


@pytest.mark.integration
def test_mmddp_leaves_backward_passes_inside_train_step_unsynchronised():
    # Why SelfSyncDistributedDataParallel exists: with mmcv's DDP the replicas would diverge.
    grad0, grad1 = run_on_ranks(_mmddp_inner_backward, 2)
    assert not torch.allclose(grad0, grad1)
