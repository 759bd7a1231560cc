#!/usr/bin/env python
"""Seed-averaged result tables of an experiment, beside the BLV paper's numbers.

  python tools/analyze_results.py work_dirs/exp40
  python tools/analyze_results.py work_dirs --exp 40 --json results.json --plot figures/

Finds every final_metrics.json below the root, groups runs that differ only in seed and prints
the paper's tables in Markdown: mean ± sample std (ddof=1) (n seeds), the paper's value and the
difference. Missing seeds are listed under each table. --plot writes Figure 3 (source pixel
frequency vs IoU gain from BLV, per class) as PNGs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmseg_uda.experiments import DATASETS
from mmseg_uda.experiments.analysis import (
    MixedSettingsError,
    analyze,
    experiments_for,
    load_results,
    plot_figure3,
    render_markdown,
    stats_for_plots,
    to_json,
)
from mmseg_uda.fileio import write_json_atomic


def _dataset_path(text: str) -> tuple[str, Path]:
    dataset, sep, path = text.partition('=')
    if not sep or dataset not in DATASETS:
        raise argparse.ArgumentTypeError(
            f'expected DATASET=PATH with DATASET one of {sorted(DATASETS)}, got {text!r}')
    return dataset, Path(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('root', type=Path, help='folder searched for final_metrics.json files')
    ap.add_argument('--exp', type=int, help='only this experiment (default: every one found)')
    ap.add_argument('--seeds', type=lambda s: [int(x) for x in s.split(',')],
                    help="expected seeds (default: the experiment's), e.g. 0")
    ap.add_argument('--json', type=Path, metavar='OUT', help='also write the numbers as JSON')
    ap.add_argument('--plot', type=Path, metavar='DIR', help='write Figure 3 PNGs into DIR')
    ap.add_argument('--source-stats', type=_dataset_path, action='append', default=[],
                    metavar='DATASET=PATH', help='source sample_class_stats.json for --plot '
                    '(default: the one named by the runs\' configs)')
    ap.add_argument('--allow-mixed-settings', action='store_true',
                    help='average seeds of a row even if they ran for different iterations')
    args = ap.parse_args(argv)
    if not args.root.is_dir():
        ap.error(f'{args.root} is not a folder')

    results = load_results(args.root)
    if not results and args.exp is None:
        print(f'no final_metrics.json below {args.root}; nothing to analyse', file=sys.stderr)
        return 1
    try:
        reports, unmatched = analyze(results, experiments_for(results, args.exp), args.seeds,
                                     args.allow_mixed_settings)
    except MixedSettingsError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    print(render_markdown(reports, unmatched))
    if args.json:
        write_json_atomic(to_json(reports, unmatched), str(args.json))
        print(f'wrote {args.json}')
    if args.plot:
        stats = stats_for_plots(results, dict(args.source_stats))
        for path in plot_figure3(reports, args.plot, stats):
            print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
