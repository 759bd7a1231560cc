"""Running a sweep of generated configs without losing work.

A run whose work dir holds ``final_metrics.json`` is finished and skipped; a run whose work dir
holds checkpoints resumes from the latest one; anything else starts. So re-running the same
command finishes an interrupted sweep. Each run is a ``tools/train.py`` process, launched
directly (``local``), under torchrun (DDP over ``--gpus`` GPUs), or as one task of a SLURM array
whose task calls ``run_experiments.py --config``, so the skip/resume decision is taken when the
task starts, not when the script was written.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .experiments import REPO_ROOT

FINAL_METRICS = 'final_metrics.json'
TRAIN_SCRIPT = REPO_ROOT / 'tools' / 'train.py'
LAUNCHERS = ('local', 'torchrun', 'slurm')
_ITER_CKPT = re.compile(r'^iter_(\d+)\.pth$')


@dataclass(frozen=True)
class Job:
    name: str
    config: Path
    work_dir: Path


@dataclass(frozen=True)
class Step:
    action: str                     # 'skip' | 'resume' | 'start'
    checkpoint: Path | None = None


def latest_checkpoint(work_dir: Path) -> Path | None:
    """The ``iter_N.pth`` with the largest N in ``work_dir``, or None.

    mmseg's ``find_latest_checkpoint`` would raise on any other ``*.pth`` there (e.g. a copy of
    pretrained weights), and ``latest.pth`` is only a link to one of these files.
    """
    if not work_dir.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in work_dir.iterdir()
             if (m := _ITER_CKPT.match(p.name)) and p.is_file()]
    return max(found)[1] if found else None


def next_step(work_dir: Path) -> Step:
    if (work_dir / FINAL_METRICS).is_file():
        return Step('skip')
    checkpoint = latest_checkpoint(work_dir)
    return Step('resume', checkpoint) if checkpoint else Step('start')


def train_command(config: Path, work_dir: Path, *, launcher: str = 'local', gpus: int = 1,
                  resume_from: Path | None = None, cfg_options: Sequence[str] = (),
                  train_args: Sequence[str] = (), python: str = sys.executable) -> list[str]:
    """The ``tools/train.py`` command line of one run (``train_args``: further options)."""
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
    if resume_from is not None:
        cmd += ['--resume-from', str(resume_from)]
    cmd += list(train_args)
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    return cmd


def run_subprocess(cmd: list[str]) -> int:
    """Runs one training process in the repository root, its output streaming through."""
    return subprocess.call(cmd, cwd=REPO_ROOT)


@dataclass
class SweepResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


def run_sweep(jobs: Sequence[Job], *, launcher: str = 'local', gpus: int = 1,
              fresh: bool = False, cfg_options: Sequence[str] = (),
              train_args: Sequence[str] = (),
              execute: Callable[[list[str]], int] = run_subprocess,
              log: Callable[[str], None] = print) -> SweepResult:
    """Runs ``jobs`` one after the other; a failed run is reported and the sweep goes on.

    ``fresh`` (the startup test) neither skips nor resumes.
    """
    result = SweepResult()
    start = time.monotonic()
    for i, job in enumerate(jobs, 1):
        step = Step('start') if fresh else next_step(job.work_dir)
        tag = f'[{i}/{len(jobs)}] {job.name}'
        if step.action == 'skip':
            log(f'{tag}: skipped, {job.work_dir / FINAL_METRICS} exists')
            result.skipped.append(job.name)
            continue
        log(f'{tag}: resuming from {step.checkpoint}' if step.checkpoint else f'{tag}: starting')
        t0 = time.monotonic()
        code = execute(train_command(job.config, job.work_dir, launcher=launcher, gpus=gpus,
                                     resume_from=step.checkpoint, cfg_options=cfg_options,
                                     train_args=train_args))
        took = _duration(time.monotonic() - t0)
        if code == 0:
            log(f'{tag}: finished in {took}')
            result.done.append(job.name)
        else:
            log(f'{tag}: FAILED (exit status {code}) after {took}; log in {job.work_dir}')
            result.failed.append(job.name)
    log(f'sweep: {len(result.done)} run, {len(result.skipped)} skipped, '
        f'{len(result.failed)} failed in {_duration(time.monotonic() - start)}')
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
                  python: str = sys.executable) -> str:
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
