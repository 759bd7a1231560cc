"""Running a sweep of generated configs without losing work.

A run whose work dir holds ``final_metrics.json`` is finished and skipped; a run whose work dir
holds checkpoints resumes from the latest one; anything else starts. So re-running the same
command finishes an interrupted sweep. Each run is a ``tools/train.py`` process, launched
directly (``local``), under torchrun (DDP over ``--gpus`` GPUs), or as one task of a SLURM array
whose task calls ``run_experiments.py --config``, so the skip/resume decision is taken when the
task starts, not when the script was written.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mmseg_uda.core.hooks import FINAL_METRICS
from mmseg_uda.datasets.config_utils import train_crop_size
from mmseg_uda.runtime.checkpoint import list_checkpoints

from .composition import REPO_ROOT
from .losses import loss_from_meta, loss_meta

TRAIN_SCRIPT = REPO_ROOT / 'tools' / 'train.py'
LAUNCHERS = ('local', 'torchrun', 'slurm')


@dataclass(frozen=True)
class Job:
    name: str
    config: Path
    work_dir: Path


@dataclass(frozen=True)
class Step:
    action: str                     # 'skip' | 'changed' | 'resume' | 'start'
    checkpoint: Path | None = None  # the newest checkpoint (resume picks the newest loadable)
    reason: str = ''                # 'changed': how the finished run's settings differ


def recorded_settings(cfg: dict) -> dict:
    """What a finished run's results depend on, beyond its name: the whole ``exp_meta``, the
    iterations and the crop size."""
    return dict(exp_meta=cfg.get('exp_meta'),
                max_iters=cfg.get('runner', {}).get('max_iters'), crop_size=train_crop_size(cfg))


def changed_settings(work_dir: Path, config: Path) -> list[str]:
    """How the finished run in ``work_dir`` differs from what ``config`` would run now: its
    ``final_metrics.json`` (iterations, exp_meta) and the copy of its config (crop)."""
    import json
    try:
        new = recorded_settings(json.loads(Path(config).read_text()))
    except (OSError, ValueError):
        return []
    metrics = json.loads((work_dir / FINAL_METRICS).read_text())
    old = dict(exp_meta=metrics.get('exp_meta'), max_iters=metrics.get('iter'), crop_size=None)
    copy = work_dir / Path(config).name
    if copy.is_file():
        try:
            old['crop_size'] = recorded_settings(json.loads(copy.read_text()))['crop_size']
        except ValueError:  # a .py copy; the crop is then not compared
            pass
    diffs = []
    for key in ('max_iters', 'crop_size'):
        if old[key] is not None and new[key] is not None and old[key] != new[key]:
            diffs.append(f'{key}={old[key]}, now {new[key]}')
    if old['exp_meta'] is not None and new['exp_meta'] is not None:
        # A record from before the loss axis has no 'loss': it follows from its 'blv'.
        old['exp_meta'] = {**old['exp_meta'], 'loss': loss_meta(loss_from_meta(old['exp_meta']))}
        new['exp_meta'] = {**new['exp_meta'], 'loss': loss_meta(loss_from_meta(new['exp_meta']))}
        for key in sorted(set(old['exp_meta']) | set(new['exp_meta'])):
            if old['exp_meta'].get(key) != new['exp_meta'].get(key):
                diffs.append(f'exp_meta.{key}={old["exp_meta"].get(key)!r}, now '
                             f'{new["exp_meta"].get(key)!r}')
    return diffs


def next_step(work_dir: Path, config: Path | None = None) -> Step:
    if (work_dir / FINAL_METRICS).is_file():
        diffs = changed_settings(work_dir, config) if config is not None else []
        return Step('changed', reason='; '.join(diffs)) if diffs else Step('skip')
    checkpoints = list_checkpoints(work_dir)
    return Step('resume', checkpoints[-1][1]) if checkpoints else Step('start')


def set_aside(work_dir: Path) -> Path:
    """Rename a finished run's work dir out of the way (``--force``): nothing is deleted."""
    target = work_dir.with_name(f'{work_dir.name}.replaced-{time.strftime("%Y%m%d-%H%M%S")}')
    work_dir.rename(target)
    return target


def train_command(config: Path, work_dir: Path, *, launcher: str = 'local', gpus: int = 1,
                  resume: bool = False, cfg_options: Sequence[str] = (),
                  train_args: Sequence[str] = (), python: str = sys.executable) -> list[str]:
    """The ``tools/train.py`` command line of one run (``train_args``: further options).

    ``resume`` passes ``--resume-from auto``: the newest *loadable* checkpoint, falling back
    past a truncated one (runtime/checkpoint.py), never a path fixed when the sweep started."""
    if launcher == 'local':
        cmd = [python, str(TRAIN_SCRIPT)]
    elif launcher == 'torchrun':
        cmd = [python, '-m', 'torch.distributed.run', '--standalone',
               f'--nproc_per_node={gpus}', str(TRAIN_SCRIPT)]
    else:
        raise ValueError(f'launcher {launcher!r} runs no process itself; use local or torchrun')
    cmd += [str(config), '--work-dir', str(work_dir)]
    if launcher == 'torchrun':
        cmd += ['--launcher', 'pytorch']
    if resume:
        cmd += ['--resume-from', 'auto']
    cmd += list(train_args)
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    return cmd


def run_subprocess(cmd: list[str]) -> int:
    """Runs one training process in the repository root, its output streaming through."""
    return subprocess.call(cmd, cwd=REPO_ROOT)


# Where a run started with others at once writes its console output (progress bar, errors);
# mmseg's own log of the run is in the work dir as always.
CONSOLE_LOG = 'console.log'


def run_subprocess_to_log(cmd: list[str]) -> int:
    """Runs one training process with its output in ``<work dir>/console.log``: runs started
    at once (``--parallel``) would interleave their progress bars."""
    work_dir = Path(cmd[cmd.index('--work-dir') + 1])
    work_dir.mkdir(parents=True, exist_ok=True)
    with open(work_dir / CONSOLE_LOG, 'a') as out:
        return subprocess.call(cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)


def threads_per_run(parallel: int, cpus: int | None = None) -> int:
    """CPU threads for each of ``parallel`` runs at once: the cores shared out, at least 1."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // parallel)


@dataclass
class SweepResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.changed


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


def run_sweep(jobs: Sequence[Job], *, launcher: str = 'local', gpus: int = 1,
              fresh: bool = False, force: bool = False, cfg_options: Sequence[str] = (),
              train_args: Sequence[str] = (),
              execute: Callable[[list[str]], int] | None = None,
              log: Callable[[str], None] = print, parallel: int = 1) -> SweepResult:
    """Runs ``jobs`` one after the other; a failed run is reported and the sweep goes on.

    ``fresh`` (the startup test) neither skips nor resumes. A finished run whose recorded
    settings differ from its config's is reported and not rerun, unless ``force``.

    ``parallel=N`` (local launcher, CPU runs) keeps N runs going at once, each with
    ``--threads`` = cores // N and its console output in its work dir (``console.log``). On the
    2-core CPU it makes the demo's sweep about 1.2× faster (docs/measurements.md), and each
    run's arithmetic then depends on its thread count, not on the machine's core count.
    """
    if parallel < 1:
        raise ValueError(f'parallel={parallel}: expected an integer >= 1')
    if parallel > 1 and launcher != 'local':
        raise ValueError(f'parallel={parallel} runs several local processes at once; the '
                         f'{launcher} launcher has its own parallelism')
    if execute is None:
        execute = run_subprocess if parallel == 1 else run_subprocess_to_log
    if parallel > 1:
        train_args = [*train_args, '--threads', str(threads_per_run(parallel))]
    result = SweepResult()
    start = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=parallel) if parallel > 1 else None
    pending = []

    def train(tag: str, job: Job, cmd: list[str], start_line: str) -> None:
        log(start_line)  # here, so that with --parallel it says when the run really starts
        t0 = time.monotonic()
        code = execute(cmd)
        took = _duration(time.monotonic() - t0)
        if code == 0:
            log(f'{tag}: finished in {took}')
            result.done.append(job.name)
        else:
            where = (job.work_dir / CONSOLE_LOG) if parallel > 1 else job.work_dir
            log(f'{tag}: FAILED (exit status {code}) after {took}; log in {where}')
            result.failed.append(job.name)

    for i, job in enumerate(jobs, 1):
        step = Step('start') if fresh else next_step(job.work_dir, job.config)
        tag = f'[{i}/{len(jobs)}] {job.name}'
        if step.action == 'skip':
            log(f'{tag}: skipped, {job.work_dir / FINAL_METRICS} exists')
            result.skipped.append(job.name)
            continue
        if step.action == 'changed':
            if not force:
                log(f'{tag}: NOT rerun: finished with {step.reason}. Rerun with --force (the '
                    'old work dir is set aside, not deleted) or use a new --work-root')
                result.changed.append(job.name)
                continue
            log(f'{tag}: --force: finished with {step.reason}; old work dir moved to '
                f'{set_aside(job.work_dir)}')
            step = Step('start')
        start_line = (f'{tag}: resuming (--resume-from auto, newest checkpoint '
                      f'{step.checkpoint.name})' if step.checkpoint else f'{tag}: starting')
        cmd = train_command(job.config, job.work_dir, launcher=launcher, gpus=gpus,
                            resume=step.checkpoint is not None, cfg_options=cfg_options,
                            train_args=train_args)
        if pool is None:
            train(tag, job, cmd, start_line)
        else:
            pending.append(pool.submit(train, tag, job, cmd, start_line))
    if pool is not None:
        for future in pending:
            future.result()
        pool.shutdown()
        order = {job.name: i for i, job in enumerate(jobs)}  # the plan's order, not finish order
        result.done.sort(key=order.get)
        result.failed.sort(key=order.get)
    log(f'sweep: {len(result.done)} run, {len(result.skipped)} skipped, '
        f'{len(result.failed)} failed' + (f', {len(result.changed)} changed and not rerun'
                                          if result.changed else '')
        + f' in {_duration(time.monotonic() - start)}')
    for name in result.failed:
        log(f'  failed: {name}')
    return result


@dataclass(frozen=True)
class SlurmOptions:
    gpus: int = 1
    cpus_per_gpu: int = 8
    time: str = '48:00:00'
    partition: str | None = None
    max_parallel: int | None = None
    extra: tuple[str, ...] = ()     # further ``#SBATCH`` options, e.g. '--mem=64G'
    setup: tuple[str, ...] = ()     # shell lines run before the task, e.g. 'conda activate blv'


def sbatch_script(jobs: Sequence[Job], *, job_name: str, log_dir: Path,
                  options: SlurmOptions = SlurmOptions(), cfg_options: Sequence[str] = (),
                  force: bool = False, python: str = sys.executable) -> str:
    """An sbatch array script with one task per job; task i trains ``jobs[i]``.

    The task calls ``run_experiments.py --config``, which skips a finished run and resumes an
    interrupted one, so re-submitting the script (or requeueing a task) loses nothing.
    """
    if not jobs:
        raise ValueError('no runs to put in the SLURM array')
    array = f'0-{len(jobs) - 1}' + (f'%{options.max_parallel}' if options.max_parallel else '')
    header = [
        '#!/bin/bash',
        f'#SBATCH --job-name={job_name}',
        f'#SBATCH --array={array}',
        '#SBATCH --nodes=1',
        '#SBATCH --ntasks=1',
        f'#SBATCH --gres=gpu:{options.gpus}',
        f'#SBATCH --cpus-per-task={options.cpus_per_gpu * options.gpus}',
        f'#SBATCH --time={options.time}',
        f'#SBATCH --output={log_dir}/%x_%A_%a.out',
    ]
    if options.partition:
        header.append(f'#SBATCH --partition={options.partition}')
    header += [f'#SBATCH {opt}' for opt in options.extra]
    launcher = 'torchrun' if options.gpus > 1 else 'local'
    task = [shlex.quote(python), 'run_experiments.py', '--config', '"$CONFIG"',
            '--launcher', launcher, '--gpus', str(options.gpus)]
    if force:
        task.append('--force')
    if cfg_options:
        task += ['--cfg-options', *map(shlex.quote, cfg_options)]
    lines = [
        *header,
        '# Written by run_experiments.py; one array task per run. Re-submit to finish a sweep:',
        '# finished runs are skipped and interrupted ones resume from their latest checkpoint.',
        'set -euo pipefail',
        f'cd {shlex.quote(str(REPO_ROOT))}',
        *options.setup,
        'CONFIGS=(',
        *(f'  {shlex.quote(str(job.config))}' for job in jobs),
        ')',
        'CONFIG=${CONFIGS[$SLURM_ARRAY_TASK_ID]}',
        'echo "task $SLURM_ARRAY_TASK_ID on $(hostname): $CONFIG"',
        ' '.join(task),
    ]
    return '\n'.join(lines) + '\n'


def submit(script: Path, sbatch: str = 'sbatch') -> str:
    """Submits ``script`` with sbatch and returns its answer (the job id line)."""
    out = subprocess.run([sbatch, str(script)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'sbatch {script} failed ({out.returncode}): {out.stderr.strip()}')
    return out.stdout.strip()
