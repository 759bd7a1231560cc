#!/usr/bin/env python
"""Generate the configs of an experiment (mmseg_uda/experiments/catalogue.py) and run them.

  python run_experiments.py --exp 40 --dry-run                 # write configs, list the runs
  python run_experiments.py --exp 40                           # train every run, one by one
  python run_experiments.py --exp 40 --seeds 0 --filter dlv2red
  python run_experiments.py --exp 40 --launcher torchrun --gpus 2
  python run_experiments.py --exp 40 --launcher slurm --submit
  python run_experiments.py --exp 40 --startup-test --data-root data/synthetic --data-scale 0.125
  python run_experiments.py --exp 2 --split-file 16=splits/186/labeled.txt   # a published list
  python run_experiments.py --config configs/generated/exp40/NAME.json   # one run

Re-running a command finishes an interrupted sweep: finished runs (final_metrics.json in the
work dir) are skipped and interrupted ones resume from their latest checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path

from mmseg_uda.datasets.partitions import file_source
from mmseg_uda.experiments import (
    DATASETS,
    GENERATED_DIR,
    REPO_ROOT,
    Experiment,
    Run,
    build_config,
    config_dicts,
    estimate_gpu_hours,
    get_experiment,
    plan,
    source_stats_path,
)
from mmseg_uda.experiments.planning import warm_start_run, write_partitions
from mmseg_uda.experiments.recipes import ZOO_MODELS
from mmseg_uda.experiments.sweep import (
    LAUNCHERS,
    Job,
    SlurmOptions,
    Step,
    next_step,
    run_sweep,
    sbatch_script,
    submit,
)
from mmseg_uda.fileio import atomic_write, write_json_atomic

# The startup test (DAFormer/HRDA's): two iterations, no checkpoint, and no evaluation
# (tools/train.py --no-validate), so it checks that every config builds and trains.
STARTUP_TEST = dict(
    runner=dict(max_iters=2),
    checkpoint_config=dict(interval=100, save_last=False),
    log_config=dict(interval=1),
    sync_bn=False,  # one process: experiment 1's SyncBN-under-DDP has nothing to sync
)


def without_pretrained_weights(cfg: dict) -> None:
    """The startup test trains from random init: it checks that a config builds and trains,
    and must not need weight files or a download (mmseg's zoo configs name URLs)."""
    cfg['load_from'] = None   # a warm start's checkpoint (experiment 0)
    for node in config_dicts(cfg['model']):
        if 'pretrained' in node:
            node['pretrained'] = None
        if isinstance(node.get('init_cfg'), dict) and node['init_cfg'].get('type') == 'Pretrained':
            node['init_cfg'] = None


def _split_file_arg(text: str) -> tuple[int, Path]:
    fraction, sep, path = text.partition('=')
    if not sep or not fraction.isdigit() or int(fraction) < 1:
        raise argparse.ArgumentTypeError(f'{text!r}: expected D=PATH, e.g. 16=splits/186.txt '
                                         'for the 1/16 partition')
    if not Path(path).is_file():
        raise argparse.ArgumentTypeError(f'{path}: no such file')
    return int(fraction), Path(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument('--exp', type=int, help='experiment id (mmseg_uda/experiments/catalogue.py)')
    what.add_argument('--config', type=Path, help='run one generated config (used by SLURM tasks)')
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument('--dry-run', action='store_true',
                      help='write the configs and print one line per run; train nothing')
    mode.add_argument('--startup-test', action='store_true',
                      help='2 iterations of every distinct config, seed 0, in a separate work dir')
    ap.add_argument('--seeds', type=lambda s: [int(x) for x in s.split(',')],
                    help='comma-separated subset of the seeds, e.g. 0,1')
    ap.add_argument('--filter', help='only runs whose name matches this regular expression')
    ap.add_argument('--launcher', choices=LAUNCHERS, default='local')
    ap.add_argument('--gpus', type=int, default=1, help='GPUs per run (torchrun: DDP processes)')
    ap.add_argument('--parallel', type=int, default=1,
                    help='local launcher: N runs at once, each with cores // N CPU threads and '
                    'its console output in <work dir>/console.log (CPU sweeps, the demo)')
    ap.add_argument('--device', choices=['cuda', 'cpu'],
                    help="passed to tools/train.py (default: each config's device: cuda for "
                         'the paper\'s experiments, cpu for experiment 0)')
    ap.add_argument('--data-root', help="replace the 'data/' folder of every data set "
                                        '(e.g. data/synthetic for the synthetic sets)')
    ap.add_argument('--work-root', type=Path, help='parent of the work dirs '
                                                   '(default work_dirs/exp<ID>)')
    ap.add_argument('--config-dir', type=Path, help='where generated configs go '
                                                    '(default configs/generated/exp<ID>)')
    ap.add_argument('--data-scale', type=float, metavar='F',
                    help='linear size of the data relative to the real data sets, for the '
                         'settings counted in original-image pixels (RCS min_pixels, HRDA '
                         "margins); 0.125 for make_synthetic_data.py's 'small' set")
    ap.add_argument('--split-file', action='append', default=[], metavar='D=PATH',
                    type=_split_file_arg,
                    help='semi-supervised runs (experiment 2): the labelled images of the 1/D '
                         'partition from a published list (mmseg split entries, or paths such '
                         "as U2PL's leftImg8bit/train/.../*_leftImg8bit.png) instead of the "
                         'default draw from seed 0; repeatable, e.g. --split-file 16=186.txt')
    ap.add_argument('--force', action='store_true',
                    help='rerun finished runs whose recorded settings (iterations, crop, '
                         'exp_meta) differ from their config now; their old work dirs are '
                         'renamed, not deleted')
    ap.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                    help='passed to every tools/train.py call')
    slurm = ap.add_argument_group('slurm')
    slurm.add_argument('--submit', action='store_true', help='submit the array with sbatch')
    slurm.add_argument('--partition')
    slurm.add_argument('--time', default=SlurmOptions.time, help='per-task time limit')
    slurm.add_argument('--max-parallel', type=int, help='at most this many tasks at once')
    slurm.add_argument('--sbatch', action='append', default=[], metavar='OPTION',
                       help="extra #SBATCH option, e.g. --sbatch=--mem=64G (repeatable)")
    slurm.add_argument('--setup', action='append', default=[], metavar='LINE',
                       help="shell line run before each task, e.g. 'conda activate blv'")
    args = ap.parse_args(argv)
    if args.config and (args.dry_run or args.startup_test or args.launcher == 'slurm'):
        ap.error('--config trains one config locally or with torchrun')
    if args.gpus < 1:
        ap.error('--gpus must be >= 1')
    return args


def select_runs(exp: Experiment, args: argparse.Namespace) -> list[Run]:
    if args.startup_test:
        if args.seeds and args.seeds != [0]:
            print('--startup-test uses seed 0 only; --seeds ignored', file=sys.stderr)
        seeds = [0]
    else:
        seeds = args.seeds
    runs = plan(exp, seeds)
    if args.filter:
        pattern = re.compile(args.filter)
        runs = [r for r in runs if pattern.search(r.name)]
    if not runs:
        raise SystemExit(f'no run of experiment {exp.id} matches --seeds {args.seeds} '
                         f'--filter {args.filter!r}')
    return runs


def check_class_stats(configs: list[dict]) -> None:
    """Fail before training when a BLV run's source statistics are missing (names the converter)."""
    from blv_patches import read_class_stats
    paths = {source_stats_path(cfg) for cfg in configs if cfg['exp_meta']['blv'] is not None}
    for path in sorted(paths):
        try:
            read_class_stats(REPO_ROOT / path)
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f'error: {e}') from None


def check_initial_weights(cfg: dict, step: Step) -> None:
    """Fail before training when a run that starts fresh names a ``load_from`` file that is not
    there: an experiment's warm start that was not trained yet, as a lone SLURM task may find."""
    start = cfg.get('load_from')
    if start and step.action == 'start' and not Path(start).is_file():
        raise SystemExit(f'error: {cfg["name"]} starts from {start}, which does not exist. If it '
                         "is its experiment's warm start, train that first: run_experiments.py "
                         f'--exp {cfg["exp_meta"]["exp"]} trains it before the other runs')


def device_args(args: argparse.Namespace) -> list[str]:
    return ['--device', args.device] if args.device else []


def job_of(config_path: Path, cfg: dict) -> Job:
    return Job(cfg.get('name', config_path.stem), config_path, REPO_ROOT / cfg['work_dir'])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.config:
        cfg = json.loads(args.config.read_text())
        write_partitions(cfg, dict(args.split_file))
        check_class_stats([cfg])
        check_initial_weights(cfg, next_step(REPO_ROOT / cfg['work_dir'], args.config))
        result = run_sweep([job_of(args.config, cfg)], launcher=args.launcher, gpus=args.gpus,
                           force=args.force, cfg_options=args.cfg_options,
                           train_args=device_args(args))
        return 0 if result.ok else 1

    exp = get_experiment(args.exp)
    split_files = dict(args.split_file)
    if split_files:
        fractions = {d.labelled_fraction for d in DATASETS.values() if d.labelled_fraction}
        unknown = sorted(set(split_files) - fractions)
        if unknown:
            raise SystemExit(f'--split-file: no semi-supervised partition 1/{unknown[0]}; the '
                             f'partitions are 1/{sorted(fractions)}')
        exp = dataclasses.replace(exp, partition_sources={
            d: file_source(path) for d, path in split_files.items()})
    tag = f'exp{exp.id}' + ('-startup' if args.startup_test else '')
    config_dir = args.config_dir or GENERATED_DIR / tag
    work_root = args.work_root or Path('work_dirs') / tag
    runs = select_runs(exp, args)
    warm = warm_start_run(exp)
    if warm is not None:   # whatever --filter and --seeds select, their runs start from it
        runs = [warm, *runs]
    jobs, configs = [], []
    config_dir.mkdir(parents=True, exist_ok=True)
    for run in runs:
        cfg = build_config(exp, run, data_root=args.data_root, data_scale=args.data_scale,
                           work_root=work_root, extra=STARTUP_TEST if args.startup_test else None)
        if args.startup_test:
            without_pretrained_weights(cfg)
        path = config_dir / f'{run.name}.json'
        write_json_atomic(cfg, str(path))
        jobs.append(job_of(path, cfg))
        configs.append(cfg)
        if args.dry_run:
            print(run.name, json.dumps(run.exp_meta()))

    rows = [r for r in runs if r is not warm]
    distinct = len({r.spec for r in rows})
    print(f'experiment {exp.id}: {len(rows)} runs ({distinct} distinct configs)'
          + (f' and the warm start they begin from, {warm.name}' if warm else '')
          + f', configs in {config_dir}', file=sys.stderr)
    for other in exp.shares_runs_of:
        shared = sorted({row.label for table in exp.tables for row in table.rows
                         if exp.shared_spec_owner(row.spec) == other.id})
        print(f'  rows served by experiment {other.id}\'s runs (run with --exp {other.id}; the '
              f'analysis reads them): {", ".join(shared)}', file=sys.stderr)
    if args.dry_run:
        hours = estimate_gpu_hours(rows)
        if hours:
            print(f'estimated cost: {hours:.0f} GPU-hours on the GPUs of lhoyer/HRDA#14 '
                  '(RTX 2080 Ti / Titan RTX; see docs/experiments.md)', file=sys.stderr)
        elif any(r.spec.backbone in ZOO_MODELS for r in runs):
            print(f'estimated cost: python tools/estimate_gpu_hours.py --exp {exp.id} (from '
                  "DAFormer's published iteration time and FLOP ratios)", file=sys.stderr)
        return 0
    for cfg in configs:  # before the class statistics: a partition keeps its labelled ones
        write_partitions(cfg, split_files)
    check_class_stats(configs)
    if args.parallel > 1:
        on_gpu = sorted({c['name'] for c in configs if (args.device or c.get('device')) == 'cuda'})
        if on_gpu:
            raise SystemExit(f'--parallel {args.parallel} shares the CPU cores out between runs; '
                             f'{len(on_gpu)} run(s) train on cuda (e.g. {on_gpu[0]}). On GPUs '
                             'use --launcher torchrun or slurm, or pass --device cpu.')
    if warm is not None and not args.startup_test:   # (the startup test starts from scratch)
        if not train_warm_start(jobs[0], exp, args):
            return 1
        jobs = jobs[1:]
    if args.launcher == 'slurm':
        return write_slurm(jobs, tag, work_root, args)
    result = run_sweep(jobs, launcher=args.launcher, gpus=args.gpus, fresh=args.startup_test,
                       force=args.force, cfg_options=args.cfg_options,
                       train_args=(['--no-validate'] if args.startup_test else [])
                       + device_args(args), parallel=args.parallel)
    return 0 if result.ok else 1


def train_warm_start(job: Job, exp: Experiment, args: argparse.Namespace) -> bool:
    """Train the warm start, alone and with every core, before the runs that read its
    checkpoint when they start; True when it is there. SLURM tasks do not wait for each other,
    so there it must be trained beforehand."""
    if args.launcher == 'slurm':
        if next_step(job.work_dir, job.config).action == 'skip':
            return True
        raise SystemExit(f'the runs of experiment {exp.id} start from its warm start, which is '
                         f'not trained yet; train it first: python run_experiments.py --config '
                         f'{job.config}')
    result = run_sweep([job], launcher=args.launcher, gpus=args.gpus, force=args.force,
                       cfg_options=args.cfg_options, train_args=device_args(args))
    if not result.ok:
        print(f'error: the warm start {job.name} did not finish; the runs that start from it '
              'were not started', file=sys.stderr)
    return result.ok


def write_slurm(jobs: list[Job], tag: str, work_root: Path, args: argparse.Namespace) -> int:
    pending = [j for j in jobs
               if args.startup_test or next_step(j.work_dir, j.config).action != 'skip']
    if not pending:
        print('every run is finished; nothing to submit')
        return 0
    log_dir = REPO_ROOT / work_root / 'slurm'
    log_dir.mkdir(parents=True, exist_ok=True)
    options = SlurmOptions(gpus=args.gpus, time=args.time, partition=args.partition,
                           max_parallel=args.max_parallel, extra=tuple(args.sbatch),
                           setup=tuple(args.setup))
    script = log_dir / f'{tag}.sbatch'
    text = sbatch_script(pending, job_name=f'blv-{tag}', log_dir=log_dir, options=options,
                         cfg_options=args.cfg_options, force=args.force)
    atomic_write(str(script), lambda f: f.write(text.encode()))
    print(f'wrote {script}: an array of {len(pending)} tasks '
          f'({len(jobs) - len(pending)} finished runs left out)')
    if args.submit:
        print(submit(script))
    else:
        print(f'submit with: sbatch {script}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
