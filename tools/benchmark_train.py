"""Benchmark one training iteration of the paper's models, with and without BLV.

For DAFormer-UDA on DeepLabV2-R101 and on MiT-B5 (512×512 crops) and HRDA on MiT-B5
(1024×1024), at batch 2 (two source and two target crops), it times full DACS iterations
(teacher update, source + feature distance + mixed backward passes, optimizer step) with random
weights and random images, and prints seconds per iteration, peak memory, the BLV/CE ratio and
the time that a run's iterations would take (40k for the UDA tables). ``table1_mitb0`` (a
fully supervised step of experiment 1's MiT-b0 + SegformerHead, 512×1024) and ``table2_r101``
(a self-training step of experiment 2's ResNet-101 + DeepLabV3+, 769×769: labelled pass,
teacher pass, unlabelled pass) are built from the experiment catalogue as the sweep builds
them. All variants run on the same model; for each AMP setting, BLV on and off alternate round
by round after their own warm-up, so both see the same machine load: on shared machines
absolute times are noise, the ratios are the result.

    python tools/benchmark_train.py [--models daformer_r101 daformer_mitb5 hrda_mitb5
        table1_mitb0 table2_r101]
        [--devices cpu cuda] [--amp off bf16 fp16] [--warmup 1] [--iters 2]

BLV off means BLV's losses in eval mode, which compute mmseg's cross entropy on the raw
logits: the only difference between the variants is BLV's perturbation. Peak memory is the
CUDA allocator's peak, or on the CPU the process's peak resident set (weights included).
"""
from __future__ import annotations

import argparse
import os.path as osp
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from mmcv import Config
from mmcv.runner import build_optimizer

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path[:0] = [p for p in (REPO, osp.join(REPO, 'tools')) if p not in sys.path]

from benchmark_blv import GTA_COUNTS  # noqa: E402

import mmseg_uda  # noqa: E402,F401  (registers models, losses; applies compat)
from blv_patches import BLVLoss, apply_blv  # noqa: E402
from mmseg_uda.models.uda import build_train_model  # noqa: E402
from mmseg_uda.runtime import TrainStepper  # noqa: E402

BASE = osp.join(REPO, 'configs', '_base_')
ITERATIONS_PER_RUN = 40_000

# name: (model config, UDA config, crop, DACS overrides) — the paper's training settings.
MODELS = {
    'daformer_r101': ('deeplabv2red_r101v1c.py', 'dacs_a999_fdthings.py', 512,
                      dict(pseudo_weight_ignore_top=15, pseudo_weight_ignore_bottom=120)),
    'daformer_mitb5': ('daformer_sepaspp_mitb5.py', 'dacs_a999_fdthings.py', 512,
                       dict(pseudo_weight_ignore_top=15, pseudo_weight_ignore_bottom=120)),
    'hrda_mitb5': ('hrda_daformer_sepaspp_mitb5.py', 'dacs_a999_fdthings.py', 1024, {}),
    # Not a paper model: a few seconds per variant on a CPU, for smoke tests.
    'tiny': ('tiny_daformer_mitb0.py', 'dacs_a999_fdthings.py', 64, {}),
}
# name: (experiment id, data set, backbone) of a BLV row built by the experiment catalogue.
CATALOGUE_MODELS = {
    'table1_mitb0': (1, 'cs', 'mitb0_segformer'),
    'table2_r101': (2, 'cs_1-16', 'r101_dlv3p'),
}
NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


def catalogue_config(name: str) -> Config:
    """The seed-0 BLV run of a ``CATALOGUE_MODELS`` row, random weights; a plain segmentor is
    stepped as ``SourceOnly`` (one forward/backward, one optimizer step: the supervised step)."""
    from mmseg_uda.experiments import EXPERIMENTS, plan
    from mmseg_uda.experiments import build_config as build_run_config
    from run_experiments import without_pretrained_weights
    exp_id, dataset, backbone = CATALOGUE_MODELS[name]
    exp = EXPERIMENTS[exp_id]
    [run] = [r for r in plan(exp, seeds=[0]) if (r.spec.dataset, r.spec.backbone) ==
             (dataset, backbone) and r.spec.blv is not None]
    cfg = build_run_config(exp, run)
    without_pretrained_weights(cfg)
    if cfg.get('uda') is None:
        cfg['uda'] = dict(type='SourceOnly')
    # No data here: GTA5's counts stand in for the data set's statistics (BLV's cost does not
    # depend on them); re-applying BLV keeps the run's options.
    return Config(apply_blv(cfg, class_counts=GTA_COUNTS))


def crop_of(name: str, cfg: Config) -> tuple[int, int]:
    if name in MODELS:
        return (MODELS[name][2],) * 2
    from mmseg_uda.datasets import train_crop_size
    return tuple(train_crop_size(cfg))


def iterations_of(name: str, cfg: Config) -> int:
    return ITERATIONS_PER_RUN if name in MODELS else cfg.runner.max_iters


def build_config(name: str) -> Config:
    if name in CATALOGUE_MODELS:
        return catalogue_config(name)
    model_cfg, uda_cfg, _, overrides = MODELS[name]
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, f'{name}.py')
        with open(path, 'w') as f:
            f.write(f"_base_ = [{osp.join(BASE, 'models', model_cfg)!r}, "
                    f"{osp.join(BASE, 'uda', uda_cfg)!r}, "
                    f"{osp.join(BASE, 'schedules', 'adamw.py')!r}]\n")
        cfg = Config.fromfile(path)
        cfg.model.pretrained = None  # random weights: the timing does not depend on them
        cfg.uda.update(overrides, debug_img_interval=None)
        cfg = apply_blv(cfg, class_counts=GTA_COUNTS, sigma=6.0)
        return Config(cfg._cfg_dict.to_dict())


def make_batch(crop: int | tuple[int, int], device: torch.device, batch: int = 2) -> dict:
    """Random images and blocky labels with every class: work for ClassMix and the feature
    distance. ``crop``: a side, or (height, width)."""
    h, w = (crop, crop) if isinstance(crop, int) else crop
    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 19, (batch, 1, -(-h // 32), -(-w // 32)), generator=g)
    gt = blocks.repeat_interleave(32, 2).repeat_interleave(32, 3)[..., :h, :w].contiguous()
    meta = dict(img_shape=(h, w, 3), ori_shape=(h, w, 3), pad_shape=(h, w, 3),
                scale_factor=1.0, flip=False, img_norm_cfg=NORM)
    return dict(img=torch.randn(batch, 3, h, w, generator=g).to(device),
                img_metas=[dict(meta) for _ in range(batch)],
                gt_semantic_seg=gt.to(device),
                target_img=torch.randn(batch, 3, h, w, generator=g).to(device),
                target_img_metas=[dict(meta) for _ in range(batch)])


class PeakMemory:
    """Peak memory of the code between ``reset()`` and ``read()``, in GiB."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def reset(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        elif osp.exists('/proc/self/clear_refs'):
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # resets the process's peak RSS (VmHWM)

    def read(self) -> float:
        if self.device.type == 'cuda':
            return torch.cuda.max_memory_allocated(self.device) / 2 ** 30
        if osp.exists('/proc/self/status'):
            with open('/proc/self/status') as f:
                line = next(ln for ln in f if ln.startswith('VmHWM:'))
            return int(line.split()[1]) / 2 ** 20
        import resource  # peak since start only: the first, largest variant dominates
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def alternating_rounds(step: Callable[[str, bool], float], amp_modes: Sequence[str],
                       warmup: int, iters: int, memory: PeakMemory,
                       log: Callable[[str, bool, int, float], None] | None = None) -> list[dict]:
    """Time ``step(amp, blv)`` (seconds of one iteration; it resets ``memory`` itself) for each
    AMP mode with BLV off and on: ``warmup`` untimed then ``iters`` timed rounds per mode, CE and
    BLV alternating which goes first, so neither always follows the other. Returns the median
    seconds and the peak memory of each (amp, blv) variant."""
    variants = [(amp, blv) for amp in amp_modes for blv in (False, True)]
    times: dict = {v: [] for v in variants}
    peaks: dict = {v: 0.0 for v in variants}
    for amp in amp_modes:  # switching precision re-creates CPU kernels: warm up per mode
        for round_ in range(warmup + iters):
            for blv in ((False, True) if round_ % 2 == 0 else (True, False)):
                seconds = step(amp, blv)
                if log is not None:
                    log(amp, blv, round_, seconds)
                if round_ >= warmup:
                    times[(amp, blv)].append(seconds)
                    peaks[(amp, blv)] = max(peaks[(amp, blv)], memory.read())
    return [dict(amp=amp, blv=blv, seconds=statistics.median(times[(amp, blv)]),
                 peak_gib=peaks[(amp, blv)]) for amp, blv in variants]


def bench_model(name: str, device: torch.device, amp_modes: list[str], warmup: int,
                iters: int) -> list[dict]:
    """Seconds per iteration (median) and peak memory of each (AMP, BLV) variant."""
    cfg = build_config(name)
    torch.manual_seed(0)
    model = build_train_model(cfg).to(device).train()
    optimizer = build_optimizer(model.get_model(), cfg.optimizer)
    data = make_batch(crop_of(name, cfg), device)
    blv_losses = [m for m in model.modules() if isinstance(m, BLVLoss)]
    memory = PeakMemory(device)
    steppers = {amp: TrainStepper(enabled=amp != 'off', dtype='bf16' if amp == 'off' else amp)
                for amp in amp_modes}  # one fp16 loss scale per mode, kept across rounds

    def step(amp: str, blv: bool) -> float:
        model.stepper = steppers[amp]
        for loss in blv_losses:
            loss.train(blv)  # eval mode: cross entropy on the raw logits
        memory.reset()
        _sync(device)
        start = time.perf_counter()
        model.train_step(data, optimizer)
        _sync(device)
        return time.perf_counter() - start

    def progress(amp: str, blv: bool, round_: int, seconds: float) -> None:
        print(f'  {name} on {device}, AMP {amp}, BLV {"on" if blv else "off"}, '
              f'{"warm-up" if round_ < warmup else "timed"} round {round_ + 1}: '
              f'{seconds:.2f} s', file=sys.stderr, flush=True)  # minutes per step on CPU

    results = alternating_rounds(step, amp_modes, warmup, iters, memory, progress)
    h, w = crop_of(name, cfg)
    for r in results:
        r.update(crop=f'{h}×{w}', iterations=iterations_of(name, cfg))
    return results


def format_rows(name: str, device: str, results: list[dict]) -> list[str]:
    rows = []
    by_key = {(r['amp'], r['blv']): r for r in results}
    for amp in dict.fromkeys(r['amp'] for r in results):
        ce, blv = by_key[(amp, False)], by_key[(amp, True)]
        hours = blv['seconds'] * blv['iterations'] / 3600
        rows.append(f"| {name} | {blv['crop']} | {device} | {amp} | {ce['seconds']:.2f} | "
                    f"{blv['seconds']:.2f} | {blv['seconds'] / ce['seconds']:.3f} | "
                    f"{ce['peak_gib']:.2f} | {blv['peak_gib']:.2f} | "
                    f"{blv['iterations'] // 1000}k: {hours:.1f} h |")
    return rows


HEADER = ('| model | crop | device | AMP | s/iter CE | s/iter BLV | BLV/CE | peak GiB CE | '
          'peak GiB BLV | a run (BLV) |\n|---|---|---|---|---|---|---|---|---|---|')


def main(argv: list[str] | None = None, print_fn: Callable[[str], None] = print) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--models', nargs='+', choices=sorted({**MODELS, **CATALOGUE_MODELS}),
                    default=['daformer_r101', 'daformer_mitb5', 'hrda_mitb5'])
    ap.add_argument('--devices', nargs='+', default=None, help='default: cpu, and cuda if present')
    ap.add_argument('--amp', nargs='+', choices=['off', 'bf16', 'fp16'], default=['off', 'bf16'])
    ap.add_argument('--warmup', type=int, default=1, help='untimed rounds (default 1)')
    ap.add_argument('--iters', type=int, default=2, help='timed rounds (default 2)')
    args = ap.parse_args(argv)
    devices = args.devices or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    np.random.seed(0)
    print_fn(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch 2, '
             f'{args.warmup} warm-up + {args.iters} timed rounds (median), random weights')
    print_fn(HEADER)
    rows = []
    for device in devices:
        for name in args.models:
            for row in format_rows(name, device, bench_model(
                    name, torch.device(device), args.amp, args.warmup, args.iters)):
                print_fn(row)
                rows.append(row)
    return rows


if __name__ == '__main__':
    main()
