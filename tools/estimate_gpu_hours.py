"""Estimate the GPU-hours of experiments 1 and 2 from the paper's recipes. An estimate, not a
measurement: no GPU has run them, and no cost is published for these recipes.

    python tools/estimate_gpu_hours.py [--exp 1 2]

The one published anchor is DAFormer's: 16 GPU-hours for 40k DACS iterations of DAFormer on
MiT-B5 (512×512 crops, batch 2) on an RTX 2080 Ti (lhoyer/HRDA#14), i.e. 1.44 s an iteration.
Taking GPU time as proportional to an iteration's FLOPs, a run of an experiment-1/2 config costs

    iterations × passes × F(model, crop) / (8 × F(DAFormer MiT-B5, 512×512)) × 1.44 s × GPUs

where F is one forward pass at batch 1 (mmcv's FLOP counter), a forward counts 1 pass and a
backward 2: a DACS iteration 8 (as recipes.GPU_HOURS assumes), a supervised step 3, a
self-training step 7 (labelled 3, teacher 1, unlabelled 3); and GPUs = 8, the paper's batch 16
as 8 GPUs × 2, each GPU doing the single-GPU work of batch 2. mmcv's counter leaves out the
attention products, so transformer models (MiT, Swin, ViT) are underestimated; GPUs are also
less efficient on small convolutions than the ratio assumes. Read the result as an order of
magnitude.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path[:0] = [p for p in (REPO, osp.join(REPO, 'tools')) if p not in sys.path]

import torch  # noqa: E402
from mmcv import Config, ConfigDict  # noqa: E402
from mmcv.cnn import get_model_complexity_info  # noqa: E402
from mmseg.models import build_segmentor  # noqa: E402

import mmseg_uda  # noqa: E402,F401  (registers models)
from mmseg_uda.datasets import train_crop_size  # noqa: E402
from mmseg_uda.experiments import EXPERIMENTS, build_config, plan  # noqa: E402

ANCHOR_SECONDS = 16 * 3600 / 40000   # DAFormer MiT-B5, one DACS iteration, RTX 2080 Ti
ANCHOR_PASSES = 8
PAPER_GPUS = 8
PASSES = {'supervised': 3, 'self_training': 7}


def forward_gflops(model_cfg: dict, crop: tuple[int, int]) -> float:
    """One forward pass at batch 1, GFLOPs (multiply-adds x 2), random weights."""
    model = build_segmentor(ConfigDict(dict(model_cfg, pretrained=None))).eval()
    model.forward = model.forward_dummy
    with torch.no_grad():
        macs, _ = get_model_complexity_info(model, (3, *crop), print_per_layer_stat=False,
                                            as_strings=False)
    return 2 * macs / 1e9


def anchor_gflops() -> float:
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models',
                                   'daformer_sepaspp_mitb5.py'))
    return forward_gflops(cfg._cfg_dict.to_dict()['model'], (512, 512))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--exp', type=int, nargs='+', default=[1, 2], choices=[1, 2])
    args = ap.parse_args(argv)
    anchor = anchor_gflops()
    print(f'anchor: DAFormer MiT-B5 forward at 512x512 = {anchor:.0f} GFLOPs, '
          f'{ANCHOR_SECONDS:.2f} s per DACS iteration (lhoyer/HRDA#14)')
    print('| experiment | run (seed 0) | crop | forward GFLOPs | iterations | GPU-hours '
          '(estimate) |\n|---|---|---|---:|---:|---:|')
    cache: dict[tuple, float] = {}
    for exp_id in args.exp:
        exp = EXPERIMENTS[exp_id]
        runs = plan(exp, seeds=[0])
        total = 0.0
        for run in runs:
            cfg = build_config(exp, run)
            crop = tuple(train_crop_size(cfg))
            key = (run.spec.backbone, crop)
            if key not in cache:
                cache[key] = forward_gflops(cfg['model'], crop)
            passes = PASSES[run.spec.method]
            seconds = passes * cache[key] / (ANCHOR_PASSES * anchor) * ANCHOR_SECONDS
            hours = cfg['runner']['max_iters'] * seconds * PAPER_GPUS / 3600
            total += hours
            print(f'| {exp_id} | {run.name} | {crop[0]}x{crop[1]} | {cache[key]:.0f} | '
                  f'{cfg["runner"]["max_iters"]} | {hours:.0f} |', flush=True)
        print(f'| {exp_id} | all {len(runs)} configs x {len(exp.seeds)} seeds | | | | '
              f'{total * len(exp.seeds):.0f} |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
