"""Time one training step (forward + backward) of each full-size model and its peak memory.

Each model runs in a fresh process at the paper's training crop (512² for DAFormer and
DeepLabV2, 1024² for HRDA), so that the peak memory of one model is not hidden by another's.
Prints seconds per step, peak memory, and the time ratio to DAFormer measured in the same
invocation (the ratios are what carries over between machines).

    python tools/benchmark_models.py                      # CPU (and GPU if present), batch 1
    python tools/benchmark_models.py --device cuda --batch 2 --steps 5
    python tools/benchmark_models.py --models daformer hrda_daformer

On CPU the peak memory is the process's peak resident set size (model, activations, and the
Python/torch runtime); on GPU it is torch's peak allocated memory.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
MODELS = {
    # name: (config in configs/_base_/models, training crop)
    'daformer': ('daformer_sepaspp_mitb5', 512),
    'dlv2': ('deeplabv2red_r101v1c', 512),
    'hrda_daformer': ('hrda_daformer_sepaspp_mitb5', 1024),
    'hrda_dlv2': ('hrda_deeplabv2red_r101v1c', 1024),
}


def _peak_memory_mib(device: str) -> float:
    if device == 'cuda':
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_worker(name: str, device: str, batch: int, warmup: int, steps: int) -> dict:
    """One model in this process: build it, run warmup + timed training steps."""
    from mmcv import Config
    from mmseg.models import build_segmentor

    import mmseg_uda  # noqa: F401  (registers the models)

    config, size = MODELS[name]
    cfg = Config.fromfile(str(REPO / 'configs' / '_base_' / 'models' / f'{config}.py'))
    cfg.model.pretrained = None  # timing does not need ImageNet weights
    torch.manual_seed(0)
    model = build_segmentor(cfg.model).to(device).train()
    img = torch.randn(batch, 3, size, size, device=device)
    gt = torch.randint(0, 19, (batch, 1, size, size), device=device)
    metas = [dict(img_shape=(size, size, 3), ori_shape=(size, size, 3),
                  pad_shape=(size, size, 3), flip=False) for _ in range(batch)]
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(warmup + steps):
        model.zero_grad(set_to_none=True)
        if device == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss, _ = model._parse_losses(model.forward_train(img, metas, gt))
        loss.backward()
        if device == 'cuda':
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return dict(model=name, config=config, crop=size, batch=batch, device=device,
                params_m=sum(p.numel() for p in model.parameters()) / 1e6,
                step_s=statistics.median(times), peak_mib=_peak_memory_mib(device))


def run_isolated(name: str, args: argparse.Namespace, device: str) -> dict:
    cmd = [sys.executable, __file__, '--worker', name, '--device', device,
           '--batch', str(args.batch), '--warmup', str(args.warmup), '--steps', str(args.steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        return dict(model=name, device=device, error=proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_table(rows: list[dict]) -> None:
    print('| model | config | crop | batch | device | params (M) | s / step | '
          'peak memory (MiB) | time vs DAFormer |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    reference = {r['device']: r['step_s'] for r in rows
                 if r['model'] == 'daformer' and 'step_s' in r}
    for r in rows:
        if 'error' in r:
            print(f"| {r['model']} | failed: {r['error']} | | | {r['device']} | | | | |")
            continue
        ratio = r['step_s'] / reference[r['device']] if r['device'] in reference else float('nan')
        print(f"| {r['model']} | {r['config']} | {r['crop']}² | {r['batch']} | {r['device']} | "
              f"{r['params_m']:.1f} | {r['step_s']:.2f} | {r['peak_mib']:.0f} | {ratio:.2f}× |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', choices=sorted(MODELS), default=list(MODELS))
    parser.add_argument('--device', choices=['cpu', 'cuda', 'all'], default='all',
                        help="'all': CPU, plus CUDA when available")
    parser.add_argument('--batch', type=int, default=1,
                        help='images per step (DAFormer trains with 2 per domain)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--steps', type=int, default=1, help='timed steps (median reported)')
    parser.add_argument('--worker', choices=sorted(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.device, args.batch, args.warmup,
                                    args.steps)))
        return 0
    devices = ['cpu', 'cuda'] if args.device == 'all' else [args.device]
    devices = [d for d in devices if d == 'cpu' or torch.cuda.is_available()]
    rows = []
    for device in devices:
        for name in args.models:
            rows.append(run_isolated(name, args, device))
            print(f"# {name} on {device}: {rows[-1].get('step_s', 'failed')}", file=sys.stderr,
                  flush=True)
    print_table(rows)
    return 1 if any('error' in r for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
