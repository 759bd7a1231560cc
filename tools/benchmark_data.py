"""Benchmark the training data pipelines: samples per second per data-loader worker count.

    python tools/benchmark_data.py [--data-root data/synthetic_full] [--workers 0 1 2]
        [--pipelines daformer_gta hrda_gta ...] [--batches 8] [--full-reload]

Each pipeline is the training set of an experiment-40 config (the source pipeline with rare
class sampling, the target pipeline, at the configs' real image and crop sizes) on a converted
synthetic data set. Make one at the real data sets' image sizes (GTA5 1914x1052, SYNTHIA
1280x760, Cityscapes 2048x1024; decoding cost grows with the file size) with

    python tools/make_synthetic_data.py data/synthetic_full --scale full
    python tools/convert_datasets/{gta,synthia,cityscapes}.py data/synthetic_full/<domain>

A sample is one UDA pair (source crop + target crop); an iteration of batch 2 needs two. The
table compares each throughput with what a GPU needs to stay busy at the speed goals (40k
iterations in 4 h for DAFormer, 8 h for HRDA), and says how many workers would reach it if
workers scale linearly (they do until the cores run out). ``--full-reload`` also measures rare
class sampling as DAFormer does it (the whole pipeline again for each re-crop), side by side.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmseg.datasets import build_dataset  # noqa: E402

import mmseg_uda  # noqa: E402,F401  (registers datasets)
from mmseg_uda.experiments import EXP40, Run, RunSpec, build_config, run_name  # noqa: E402
from mmseg_uda.runtime import build_resumable_dataloader  # noqa: E402

ITERATIONS, BATCH = 40_000, 2
# name: (run spec of the pipeline, goal hours for 40k iterations on one GPU, docs/scale.md)
PIPELINES = {
    'daformer_gta': (RunSpec('gta2cs', 'daformer', 'mitb5'), 4.0),
    'daformer_synthia': (RunSpec('syn2cs', 'daformer', 'mitb5'), 4.0),
    'hrda_gta': (RunSpec('gta2cs', 'hrda', 'mitb5'), 8.0),
    'hrda_synthia': (RunSpec('syn2cs', 'hrda', 'mitb5'), 8.0),
}


def needed_samples_per_s(goal_hours: float) -> float:
    return ITERATIONS * BATCH / (goal_hours * 3600)


def train_dataset(name: str, data_root: str, rcs_min_pixels: int | None = None):
    spec, _ = PIPELINES[name]
    run = Run(EXP40.id, spec, 0, (), run_name(EXP40, spec, 0))
    cfg = build_config(EXP40, run, data_root=data_root)
    if rcs_min_pixels is not None:
        cfg['data']['train']['rare_class_sampling']['min_pixels'] = rcs_min_pixels
    return build_dataset(cfg['data']['train'])


def samples_per_s(dataset, workers: int, batches: int) -> float:
    """Throughput of the training stream after its workers have started (one batch)."""
    loader = build_resumable_dataloader(dataset, samples_per_gpu=BATCH, workers_per_gpu=workers,
                                        seed=0, persistent_workers=False)
    stream = iter(loader)
    next(stream)  # worker start-up and first decode
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    seconds = time.perf_counter() - start
    del stream
    return batches * BATCH / seconds


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--data-root', default='data/synthetic_full')
    ap.add_argument('--pipelines', nargs='+', choices=sorted(PIPELINES), default=sorted(PIPELINES))
    ap.add_argument('--workers', nargs='+', type=int, default=[0, 1, 2])
    ap.add_argument('--batches', type=int, default=8, help='timed batches per measurement')
    ap.add_argument('--rcs-min-pixels', type=int, metavar='N',
                    help="rare class sampling's min_pixels (default: the config's 3000; a few "
                         'synthetic images may hold no rare class that large)')
    ap.add_argument('--full-reload', action='store_true',
                    help="also time DAFormer's re-crop (the whole pipeline again per re-crop)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # the main process only collects batches
    print(f'{args.batches} batches of {BATCH} after one warm-up batch; data {args.data_root}; '
          f'{torch.multiprocessing.cpu_count()} CPU cores; RCS min_pixels '
          f'{args.rcs_min_pixels or "from the configs"}')
    print('| pipeline | RCS re-crop | workers | samples/s | per worker | needed for goal | '
          'workers for goal |')
    print('|---|---|---|---|---|---|---|')
    rows = []
    for name in args.pipelines:
        dataset = train_dataset(name, args.data_root, args.rcs_min_pixels)
        needed = needed_samples_per_s(PIPELINES[name][1])
        variants = [('decode once', dataset._recrop)]
        if args.full_reload:
            variants.append(('full reload', None))
        for workers in args.workers:
            for label, recrop in variants:
                dataset._recrop = recrop
                rate = samples_per_s(dataset, workers, args.batches)
                per_worker = rate / max(workers, 1)
                rows.append(dict(pipeline=name, recrop=label, workers=workers,
                                 samples_per_s=rate, needed=needed))
                print(f'| {name} | {label} | {workers} | {rate:.2f} | {per_worker:.2f} | '
                      f'{needed:.2f} | {needed / per_worker:.1f} |', flush=True)
    return rows


if __name__ == '__main__':
    main()
