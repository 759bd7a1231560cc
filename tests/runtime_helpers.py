"""Shared pieces of the runtime tests: a tiny self-stepping model, a random dataset, a runner
factory, and a launcher for 2-process gloo runs."""
from __future__ import annotations

import copy
import logging
import os
import pickle
import random
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmcv.parallel import MMDataParallel
from mmcv.runner import HOOKS, Hook
from torch import nn

from mmseg_uda.runtime import (
    ResumableIterBasedRunner,
    TrainStepper,
    build_resumable_dataloader,
    check_finite_losses,
)

TESTS = Path(__file__).parent


class RandomImages(torch.utils.data.Dataset):
    """Loading draws from Python's, numpy's and torch's generators, like mmseg's pipelines
    (random crop, flip) and rare class sampling do."""

    def __init__(self, size: int = 5) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        base = torch.full((3, 6, 6), float(index))
        jitter = random.random() + np.random.rand() + torch.rand(()).item()
        return dict(img=base + jitter, index=torch.tensor(index))


class TinySelfSteppingModel(nn.Module):
    """Stand-in for DACS: own backward passes and optimizer step, an EMA teacher driven by an
    iteration counter, BatchNorm buffers, and randomness from all three host generators."""

    def __init__(self, nan_at: int | None = None, amp: dict | None = None) -> None:
        super().__init__()
        self.student = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4),
                                     nn.ReLU(), nn.Conv2d(4, 2, 1))
        self.teacher = copy.deepcopy(self.student)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.local_iter = 0
        self.nan_at = nan_at
        self.stepper = TrainStepper.from_cfg(amp)
        self.losses_seen: list[dict] = []

    def train_step(self, data_batch: dict, optimizer: torch.optim.Optimizer, **kwargs) -> dict:
        optimizer.zero_grad()
        img = data_batch['img']
        augmented = img * (1 + 0.1 * random.random()) + 0.1 * float(np.random.rand())
        with self.stepper.autocast(img.device):
            source = self.student(augmented)
        source_loss = source.float().pow(2).mean()
        if self.local_iter == self.nan_at:
            source_loss = source_loss * float('nan')
        check_finite_losses({'src.loss': source_loss}, self.local_iter)
        self.stepper.backward(source_loss)
        with torch.no_grad():
            pseudo = self.teacher(img).argmax(1)
        keep = (torch.rand(pseudo.shape) > 0.3).float()
        with self.stepper.autocast(img.device):
            mixed = self.student(img.flip(-1))
        mix_loss = (nn.functional.cross_entropy(mixed.float(), pseudo, reduction='none')
                    * keep).mean()
        check_finite_losses({'mix.loss': mix_loss}, self.local_iter)
        self.stepper.backward(mix_loss)
        self.stepper.step(optimizer, self.student.parameters())
        self._update_teacher()
        self.local_iter += 1
        log_vars = dict(src=source_loss.item(), mix=mix_loss.item())
        self.losses_seen.append(log_vars)
        return dict(log_vars=log_vars, num_samples=img.shape[0])

    @torch.no_grad()
    def _update_teacher(self) -> None:
        alpha = min(1 - 1 / (self.local_iter + 2), 0.99)
        for t, s in zip(self.teacher.parameters(), self.student.parameters()):
            t.mul_(alpha).add_(s, alpha=1 - alpha)

    def training_state_dict(self) -> dict:
        return dict(local_iter=self.local_iter, stepper=self.stepper.state_dict())

    def load_training_state_dict(self, state: dict) -> None:
        self.local_iter = state['local_iter']
        self.stepper.load_state_dict(state['stepper'])


class Interrupted(Exception):
    """Stands in for a pre-emption between two iterations."""


@HOOKS.register_module(force=True)
class InterruptAfterIter(Hook):
    """Raises :class:`Interrupted` right after iteration ``iteration`` (1-based). Register it
    with priority 'LOWEST', after the checkpoint hook."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def after_train_iter(self, runner) -> None:
        if runner.iter + 1 == self.iteration:
            raise Interrupted(self.iteration)


def make_runner(work_dir: Path, max_iters: int, model_cfg: dict | None = None,
                max_keep_ckpts: int = -1, interval: int = 1, workers: int = 0,
                interrupt_after: int | None = None
                ) -> tuple[ResumableIterBasedRunner, torch.utils.data.DataLoader]:
    """A seeded ResumableIterBasedRunner training ``TinySelfSteppingModel(**model_cfg)`` with
    AdamW and poly+warmup LR on a RandomImages stream."""
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    model = TinySelfSteppingModel(**(model_cfg or {}))
    wrapped = MMDataParallel(model)
    optimizer = torch.optim.AdamW(model.student.parameters(), lr=1e-2, weight_decay=0.01)
    runner = ResumableIterBasedRunner(
        model=wrapped, optimizer=optimizer, work_dir=str(work_dir),
        logger=logging.getLogger('runtime-test'), max_iters=max_iters)
    runner.register_training_hooks(
        lr_config=dict(policy='poly', power=1.0, min_lr=0.0, warmup='linear', warmup_iters=2,
                       warmup_ratio=0.1),
        checkpoint_config=dict(interval=interval, max_keep_ckpts=max_keep_ckpts))
    if interrupt_after is not None:  # registered after the checkpoint hook, so it runs last
        runner.register_hook(InterruptAfterIter(interrupt_after), priority='LOWEST')
    loader = build_resumable_dataloader(RandomImages(), samples_per_gpu=2,
                                        workers_per_gpu=workers, seed=0)
    return runner, loader


def train(runner: ResumableIterBasedRunner, loader, resume_from: str | None = None) -> None:
    if resume_from is not None:
        runner.resume(resume_from)
    runner.run([loader], [('train', 1)])


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    """Bit-identical parameters and buffers."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), f'{key} differs'


_KILL_DURING_SAVE = '''
import io, os, signal, sys
import torch
sys.path[:0] = {paths!r}
torch.set_num_threads({threads})  # as in the test process: float results depend on it
real_save, calls = torch.save, []

def save_half_then_die(obj, f):
    calls.append(1)
    if len(calls) < {kill_at}:
        return real_save(obj, f)
    buffer = io.BytesIO()
    real_save(obj, buffer)
    f.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = save_half_then_die
{train}
'''


def run_killed_during_save(kill_at: int, train: str) -> subprocess.CompletedProcess:
    """Run the Python code ``train`` in a fresh process whose ``kill_at``-th ``torch.save``
    writes half of the checkpoint and then SIGKILLs the process."""
    script = _KILL_DURING_SAVE.format(paths=[str(TESTS), str(TESTS.parent)],
                                      threads=torch.get_num_threads(), kill_at=kill_at,
                                      train=train)
    return subprocess.run([sys.executable, '-c', script], cwd=TESTS.parent, capture_output=True,
                          text=True, timeout=300)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run_on_ranks(fn, world_size: int, *args) -> list:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` forked gloo processes; return
    each rank's result (re-raising a rank's exception here)."""
    port = free_port()
    ctx = mp.get_context('fork')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_rank_main, args=(fn, rank, world_size, port, queue, args))
             for rank in range(world_size)]
    for p in procs:
        p.start()
    try:
        results = {rank: pickle.loads(blob) for rank, blob in
                   (queue.get(timeout=120) for _ in procs)}
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    errors = [r for r in results.values() if isinstance(r, str) and r.startswith('Traceback')]
    assert not errors, errors[0]
    return [results[r] for r in range(world_size)]


def _rank_main(fn, rank, world_size, port, queue, args):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        dist.init_process_group('gloo', rank=rank, world_size=world_size)
        result = fn(rank, world_size, *args)
    except BaseException:  # noqa: BLE001  (reported to the parent)
        result = traceback.format_exc()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    # Plain pickle: tensors by value (torch's queue reducers share memory of a dying process).
    queue.put((rank, pickle.dumps(result)))


def assert_nested_equal(a, b, path: str = '') -> None:
    """Exact equality of nested dicts/lists/tuples of tensors, arrays and scalars."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f'{path}: keys differ'
        for key in a:
            assert_nested_equal(a[key], b[key], f'{path}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f'{path}: lengths differ'
        for i, (x, y) in enumerate(zip(a, b)):
            assert_nested_equal(x, y, f'{path}[{i}]')
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), f'{path} differs'
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), f'{path} differs'
    else:
        assert a == b, f'{path}: {a!r} != {b!r}'


def load(path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)
