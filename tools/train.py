"""Train a UDA model (DACS, source-only) or a plain segmentor from an mmseg config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume-from CKPT|auto] [--seed S]
        [--deterministic] [--launcher none|pytorch|slurm] [--device cuda|cpu]
        [--cfg-options k=v ...]

Runs on one GPU, or with DDP under torchrun (``--launcher pytorch``) or srun
(``--launcher slurm``) on GPUs (NCCL) or CPUs (gloo). The device is the config's ``device``
(``'cuda'`` unless set); ``--device cpu`` trains on the CPU. A GPU run on a machine where torch
sees no GPU stops with the reason: there is no silent CPU fallback.
Writes the log, a copy of the config, checkpoints, TensorBoard scalars and
``final_metrics.json`` into the work dir. ``--resume-from auto`` continues from the newest
loadable checkpoint of the work dir, exactly where the interrupted run stopped (or starts when
there is none), so a pre-empted job can always be resubmitted with the same command.
"""
from __future__ import annotations

import argparse
import logging
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import mmcv  # noqa: E402
import torch  # noqa: E402
from mmcv import Config, DictAction  # noqa: E402
from mmcv.runner import get_dist_info  # noqa: E402
from mmseg import __version__ as mmseg_version  # noqa: E402
from mmseg.apis import init_random_seed, set_random_seed  # noqa: E402
from mmseg.datasets import build_dataset  # noqa: E402
from mmseg.utils import collect_env, get_root_logger, setup_multi_processes  # noqa: E402

import mmseg_uda  # noqa: E402,F401  (registers models, datasets, losses)
from mmseg_uda.apis import train_uda  # noqa: E402
from mmseg_uda.compat import configure_for_device  # noqa: E402
from mmseg_uda.config_check import check_config, check_option_keys  # noqa: E402
from mmseg_uda.models.uda import build_train_model  # noqa: E402
from mmseg_uda.runtime import (  # noqa: E402
    derive_seed,
    init_distributed,
    is_main_process,
    shutdown_distributed,
)
from mmseg_uda.runtime.device import configure_fp32_math  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file (.py or generated .json)')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: the '
                        "config's work_dir, else work_dirs/<config name>)")
    parser.add_argument('--resume-from', help='checkpoint to resume training from, or "auto": '
                        'the newest loadable one in the work dir (none: start)')
    parser.add_argument('--load-from', help='checkpoint to start from (weights only)')
    parser.add_argument('--no-validate', action='store_true',
                        help='skip evaluation during and after training (no final_metrics.json)')
    parser.add_argument('--seed', type=int, help="random seed (default: the config's seed)")
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (cuDNN, cuBLAS; no cudnn.benchmark)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher: pytorch for torchrun, slurm for srun')
    parser.add_argument('--device', choices=['cuda', 'cpu'],
                        help="where to train (default: the config's device, else cuda; a GPU "
                        'run on a machine without a GPU stops with the reason)')
    parser.add_argument('--threads', type=int,
                        help="torch's intra-op CPU threads for this run (default: torch's, one "
                        'per core); the sweep\'s --parallel sets it')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. runner.max_iters=100')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(args: argparse.Namespace) -> Config:
    cfg = Config.fromfile(args.config)
    # Before anything is built: a typo or a wrong type must not cost an interval of training.
    check_option_keys(cfg, args.cfg_options)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    check_config(cfg)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.resume_from = args.resume_from or cfg.get('resume_from')
    cfg.load_from = args.load_from or cfg.get('load_from')
    if cfg.get('uda') is not None and cfg.uda.get('debug_img_interval'):
        cfg.uda.setdefault('debug_dir', osp.join(cfg.work_dir, 'class_mix_debug'))
    return cfg


def log_to_file(logger: logging.Logger, path: str) -> None:
    """Send the log of this run to ``path`` (rank 0 only).

    mmcv configures the 'mmseg' logger once per process and ignores later ``log_file``
    arguments, so runs trained one after another in one process (run_experiments.py) would all
    log into the first run's file; the previous run's file handler is replaced instead.
    """
    for handler in [h for h in logger.handlers if isinstance(h, logging.FileHandler)]:
        logger.removeHandler(handler)
        handler.close()
    if not is_main_process():
        return
    handler = logging.FileHandler(path, 'w')
    handler.setFormatter(logging.Formatter('%(asctime)s - %(name)s - %(levelname)s - %(message)s'))
    handler.setLevel(logger.level)
    logger.addHandler(handler)


def use_deterministic_algorithms() -> None:
    """Deterministic kernels where torch has them; a warning names the ops that have none."""
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')  # before cuBLAS starts
    torch.use_deterministic_algorithms(True, warn_only=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f'--threads {args.threads}: expected an integer >= 1')
        torch.set_num_threads(args.threads)
    cfg = load_config(args)
    torch.backends.cudnn.benchmark = bool(cfg.get('cudnn_benchmark')) and not args.deterministic

    if args.deterministic:
        use_deterministic_algorithms()
    # One device per process: a config dumped by a DDP run lists every rank's GPU, and
    # MMDataParallel takes exactly one (CUDA_VISIBLE_DEVICES chooses which GPU).
    cfg.gpu_ids = [0]
    configure_for_device(cfg, args.device)  # before the process group: NCCL needs a GPU
    configure_fp32_math(cfg.get('tf32', True))
    setup_multi_processes(cfg)  # worker start method, OpenCV/OMP threads per worker
    distributed = args.launcher != 'none'
    if distributed:
        init_distributed(args.launcher, **cfg.get('dist_params', {}))
        cfg.gpu_ids = list(range(get_dist_info()[1]))
    rank, world_size = get_dist_info()

    mmcv.mkdir_or_exist(osp.abspath(cfg.work_dir))
    if rank == 0:
        cfg.dump(osp.join(cfg.work_dir, osp.basename(args.config)))
    timestamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    logger = get_root_logger(log_level=cfg.get('log_level', 'INFO'))
    log_to_file(logger, osp.join(cfg.work_dir, f'{timestamp}.log'))
    env_info = '\n'.join(f'{k}: {v}' for k, v in collect_env().items())
    logger.info(f'Environment:\n{env_info}')
    logger.info(f'Distributed training: {distributed}, device: {cfg.device}, '
                f'TF32: {cfg.get("tf32", True) and cfg.device == "cuda"}')

    seed = init_random_seed(args.seed if args.seed is not None else cfg.get('seed'),
                            device=cfg.device)
    logger.info(f'Set random seed to {seed}, deterministic: {args.deterministic}')
    # Each rank's augmentation, BLV noise and dropout draw from its own stream; the data
    # stream (cfg.seed) and the initial weights (broadcast from rank 0) are shared.
    set_random_seed(seed if world_size == 1 else derive_seed(seed, rank),
                    deterministic=args.deterministic)
    cfg.seed = seed
    config_text = cfg.pretty_text  # formatting is slow (yapf): once per run
    logger.info(f'Config:\n{config_text}')

    model = build_train_model(cfg)
    model.init_weights()
    datasets = [build_dataset(cfg.data.train)]
    model.CLASSES = datasets[0].CLASSES
    model.PALETTE = datasets[0].PALETTE
    meta = dict(env_info=env_info, seed=seed, exp_name=osp.basename(args.config),
                config=config_text)
    if cfg.checkpoint_config is not None:
        cfg.checkpoint_config.meta = dict(mmseg_version=mmseg_version, config=config_text,
                                          CLASSES=datasets[0].CLASSES,
                                          PALETTE=datasets[0].PALETTE)
    try:
        train_uda(model, datasets, cfg, distributed=distributed, validate=not args.no_validate,
                  timestamp=timestamp, meta=meta)
    finally:
        shutdown_distributed()


if __name__ == '__main__':
    main()
