"""Benchmark BLV's loss against mmseg's cross entropy and a host-sampled BLV.

Times forward+backward of four losses (CE, BLV with each of its two exact gaussian samplers,
and BLV sampled on the host as released) on the same logits, interleaved round by round so
that all of them see the same machine load, and prints the median time and the ratios
BLV/CE and host-sampled/BLV per shape and device. Absolute times on shared machines are
noise; the ratios are the result.

    python tools/benchmark_blv.py [--shapes 2x19x512x512 2x19x1024x1024] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn
from mmseg.models.losses import CrossEntropyLoss

import mmseg_uda  # noqa: F401  (registers BLVLoss, applies compat)
from blv_patches import BLVLoss
from blv_patches.class_frequency import GTA5_PIXEL_COUNTS

# GTA5 class pixel counts; any long-tailed counts would do.
GTA_COUNTS = list(GTA5_PIXEL_COUNTS)


class HostSampledBLV(BLVLoss):
    """BLV as the released code samples it: Normal(0, σ) drawn on the host, then copied to
    the logits' device, clamped and made absolute (grantword8/BLV e08cc6cb, blv_loss.py)."""

    def perturb(self, logits: torch.Tensor) -> torch.Tensor:
        noise = torch.distributions.Normal(0.0, self.sigma).sample(logits.shape)
        noise = noise.to(logits.device).clamp(-self.clip, self.clip).abs()
        scale = self.class_scale.view(1, -1, 1, 1)
        return logits + noise * scale


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _step(loss_fn: nn.Module, logits: torch.Tensor, label: torch.Tensor) -> None:
    logits.grad = None
    loss_fn(logits, label, ignore_index=255).backward()


def time_interleaved(fns: dict[str, Callable[[], None]], device: torch.device,
                     repeats: int, warmup: int = 1) -> dict[str, float]:
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_shape(shape: tuple[int, ...], device: torch.device, repeats: int) -> dict[str, float]:
    n, c, h, w = shape
    counts = GTA_COUNTS if c == len(GTA_COUNTS) else [float(10 ** (i % 6)) for i in range(c)]
    logits = torch.randn(shape, device=device, requires_grad=True)
    label = torch.randint(0, c, (n, h, w), device=device)
    losses = {
        'ce': CrossEntropyLoss().to(device),
        'blv': BLVLoss(class_counts=counts, sigma=6.0).to(device).train(),
        'blv_icdf': BLVLoss(class_counts=counts, sigma=6.0,
                            gaussian_sampler='inverse_cdf').to(device).train(),
        'host': HostSampledBLV(class_counts=counts, sigma=6.0).to(device).train(),
    }
    fns = {k: (lambda f=f: _step(f, logits, label)) for k, f in losses.items()}
    return time_interleaved(fns, device, repeats)


def bench_noise_parts(shape: tuple[int, ...], repeats: int) -> dict[str, float]:
    """The building blocks of the noise on the CPU, interleaved: which one costs what."""
    x = torch.rand(shape)
    parts = {'rand': lambda: torch.rand(shape), 'randn': lambda: torch.randn(shape),
             'erfinv': lambda: torch.erfinv(x), 'one elementwise pass (mul_)': lambda: x.mul_(1.0)}
    return time_interleaved(parts, torch.device('cpu'), repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--shapes', nargs='+', default=['2x19x512x512', '2x19x1024x1024'])
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--devices', nargs='+', default=None, help='default: cpu, and cuda if present')
    ap.add_argument('--noise-parts', action='store_true',
                    help='also time the noise\'s building blocks on the CPU (rand, randn, erfinv)')
    args = ap.parse_args()
    devices = args.devices or (['cpu'] + (['cuda'] if torch.cuda.is_available() else []))
    print(f'torch {torch.__version__}, {torch.get_num_threads()} CPU threads, '
          f'median of {args.repeats} interleaved rounds, forward+backward')
    print('| device | shape | CE ms | BLV ms | BLV inverse-CDF ms | host-sampled ms | BLV/CE | '
          'BLV inverse-CDF/CE | host/BLV |')
    print('|---|---|---|---|---|---|---|---|---|')
    for dev in devices:
        device = torch.device(dev)
        for s in args.shapes:
            shape = tuple(int(x) for x in s.split('x'))
            t = bench_shape(shape, device, args.repeats)
            print(f'| {dev} | {s} | {t["ce"] * 1e3:.1f} | {t["blv"] * 1e3:.1f} | '
                  f'{t["blv_icdf"] * 1e3:.1f} | {t["host"] * 1e3:.1f} | '
                  f'{t["blv"] / t["ce"]:.2f} | {t["blv_icdf"] / t["ce"]:.2f} | '
                  f'{t["host"] / t["blv"]:.2f} |', flush=True)
    if args.noise_parts:
        for s in args.shapes:
            shape = tuple(int(x) for x in s.split('x'))
            parts = bench_noise_parts(shape, args.repeats)
            print(f'noise parts at {s}, {torch.get_num_threads()} threads: '
                  + ', '.join(f'{k} {v * 1e3:.1f} ms' for k, v in parts.items()))


if __name__ == '__main__':
    main()
