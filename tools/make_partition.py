"""Write a semi-supervised partition of Cityscapes train (experiment 2, the paper's Table 2).

    python tools/make_partition.py --data-root data/cityscapes --fraction 16 --seed 0
    python tools/make_partition.py --data-root data/cityscapes --fraction 16 \\
        --split-file U2PL/data/splits/cityscapes/186/labeled.txt

Writes DATA_ROOT/splits/1-D_seedS/ (or 1-D_file-<sha>/ for a published list): labelled.txt and
unlabelled.txt in mmseg's split format, and the labelled images' sample_class_stats.json.
run_experiments.py writes the partitions its runs need by itself; this tool is for using them
elsewhere, or for looking at one first.
"""
from __future__ import annotations

import argparse
import sys

from mmseg_uda.datasets.partitions import write_partition


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data-root', required=True, help='a Cityscapes root (leftImg8bit/train)')
    ap.add_argument('--fraction', type=int, required=True, metavar='D',
                    help='1/D of the training images keep their labels (16, 8, 4, 2)')
    source = ap.add_mutually_exclusive_group()
    source.add_argument('--seed', type=int, default=0, help='the draw (default 0)')
    source.add_argument('--split-file', help='a published list of the labelled images')
    args = ap.parse_args(argv)
    if args.fraction < 1:
        ap.error('--fraction must be >= 1')
    try:
        folder = write_partition(args.data_root, args.fraction, seed=args.seed,
                                 split_file=args.split_file)
    except (FileNotFoundError, ValueError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    labelled = len((folder / 'labelled.txt').read_text().split())
    unlabelled = len((folder / 'unlabelled.txt').read_text().split())
    print(f'{folder}: {labelled} labelled, {unlabelled} unlabelled images')
    return 0


if __name__ == '__main__':
    sys.exit(main())
