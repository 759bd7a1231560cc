"""Write a procedural, long-tailed street-scene data set in three domains.

    python tools/make_synthetic_data.py data/synthetic --seed 0 --scale small \
        --preview docs/synthetic_preview.png
    python tools/convert_datasets/gta.py data/synthetic/gta
    python tools/convert_datasets/synthia.py data/synthetic/synthia
    python tools/convert_datasets/cityscapes.py data/synthetic/cityscapes

OUT/gta, OUT/synthia and OUT/cityscapes have the on-disk layouts and raw label encodings of
GTA5, SYNTHIA RAND-CITYSCAPES and Cityscapes, so the converters and datasets treat them like
the real data. See docs/data.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import cv2

from mmseg_uda.datasets.label_maps import CLASSES
from mmseg_uda.datasets.synthetic import SCALES, generate, render_sample
from mmseg_uda.datasets.synthetic.preview import preview


def frequency_table(hist: dict) -> str:
    """Markdown table of each class's share (%) of the labelled pixels, per domain and split."""
    keys = sorted(hist)
    lines = ['| class | ' + ' | '.join(f'{d} {s}' for d, s in keys) + ' |',
             '|---|' + '---:|' * len(keys)]
    shares = {k: 100 * hist[k][:19] / max(hist[k][:19].sum(), 1) for k in keys}
    for c, name in enumerate(CLASSES):
        lines.append(f'| {name} | ' + ' | '.join(f'{shares[k][c]:.3f}' for k in keys) + ' |')
    return '\n'.join(lines)


PREVIEW_TILE_WIDTH = 192   # keeps the default preview (3 rows of 2 samples) under 300 KB


def write_preview(path: str, seed: int, scale: str, n: int = 2) -> None:
    spec = SCALES[scale]
    rows = []
    for title, domain, split, size in (
            ('GTA-like source', 'gta', 'train', spec.gta_size),
            ('SYNTHIA-like source', 'synthia', 'train', spec.synthia_size),
            ('Cityscapes-like target (val)', 'cityscapes', 'val', spec.cityscapes_size)):
        rows.append((title, domain,
                     [render_sample(domain, split, i, size, seed)[:2] for i in range(n)]))
    grid = preview(rows, tile_width=PREVIEW_TILE_WIDTH)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', help='output folder; gets gta/, synthia/ and cityscapes/')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--scale', choices=sorted(SCALES), default='small')
    parser.add_argument('--nproc', type=int, default=min(2, os.cpu_count() or 1),
                        help='worker processes (the output does not depend on it)')
    parser.add_argument('--preview', metavar='PNG',
                        help='also write a picture of a few samples per domain with labels')
    args = parser.parse_args(argv)

    spec = SCALES[args.scale]
    start = time.time()
    hist = generate(args.out, seed=args.seed, spec=spec, nproc=args.nproc)
    elapsed = time.time() - start
    print(f'\n{len(spec.tasks())} images written '
          f'to {args.out} in {elapsed:.1f} s ({args.nproc} processes)\n')
    print('Share of labelled pixels per class (%):')
    print(frequency_table(hist))
    ignored = {k: 100 * v[255] / v.sum() for k, v in hist.items()}
    print('Ignored pixels (%): ' + ', '.join(f'{d} {s} {p:.2f}' for (d, s), p in ignored.items()))
    if args.preview:
        write_preview(args.preview, args.seed, args.scale)
        print(f'Preview written to {args.preview}')
    domains = list(dict.fromkeys(domain for domain, *_ in spec.tasks()))
    names = domains[0] if len(domains) == 1 else '{' + ','.join(domains) + '}'
    print(f'\nNext: python tools/convert_datasets/{names}.py '
          f'{args.out}/<set> --nproc {args.nproc}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
