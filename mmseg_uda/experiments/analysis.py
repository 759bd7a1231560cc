"""Seed-averaged results of an experiment, laid out as the paper's tables.

Every ``final_metrics.json`` below a root is read; runs that differ only in seed are grouped;
each table row of `mmseg_uda.experiments` gets, per metric, the mean, the sample standard
deviation (ddof=1) and the number of seeds found, beside the paper's value. mIoU19/16/13 and
the tail mIoU are recomputed from the per-class IoUs, so every number uses the same rule.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmseg_uda.core.evaluation import SYNTHIA16 as SYNTHIA16_PROTOCOL
from mmseg_uda.core.evaluation import EvalProtocol
from mmseg_uda.core.hooks import FINAL_METRICS
from mmseg_uda.datasets.label_maps import CLASSES as LABEL_CLASSES
from mmseg_uda.datasets.label_maps import TAIL_TRAINIDS

from .catalogue import EXPERIMENTS
from .composition import GENERATED_DIR, REPO_ROOT, source_stats_path
from .recipes import DATASETS
from .specs import Experiment, RunSpec, Table, TableRow

PAPER: dict[str, Any] = json.loads(Path(__file__).with_name('paper_tables.json').read_text())
CLASSES: tuple[str, ...] = LABEL_CLASSES
SYNTHIA16: tuple[str, ...] = SYNTHIA16_PROTOCOL.class_names(SYNTHIA16_PROTOCOL.evaluated)
SYNTHIA13: tuple[str, ...] = SYNTHIA16_PROTOCOL.class_names(SYNTHIA16_PROTOCOL.subsets['miou13'])
TAIL: tuple[str, ...] = tuple(CLASSES[c] for c in TAIL_TRAINIDS)
STD_NOTE = 'mean ± sample std over seeds (ddof=1; "–" when n < 2), (n) = seeds found'


def protocol(dataset: str) -> EvalProtocol:
    return DATASETS[dataset].protocol


def evaluated_classes(dataset: str) -> tuple[str, ...]:
    """The classes of the data set's tables (SYNTHIA: 16, no terrain, truck or train)."""
    p = protocol(dataset)
    return p.class_names(p.evaluated)


def tail_classes(dataset: str) -> tuple[str, ...]:
    """The paper's 9 tail classes; for SYNTHIA the 7 of them that it has."""
    p = protocol(dataset)
    return p.class_names(p.tail)


def headline_metric(dataset: str) -> str:
    return protocol(dataset).headline


def _nanmean(values: Iterable[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else math.nan


def summary_metrics(per_class: dict[str, float], dataset: str) -> dict[str, float]:
    """mIoU19 (+ mIoU16/13 for SYNTHIA) and tail mIoU from per-class IoUs (in percent).

    A class that is NaN (absent from the validation labels and the predictions) is left out,
    as mmseg's mIoU does.
    """
    out = {'miou19': _nanmean(per_class.get(c, math.nan) for c in CLASSES)}
    p = protocol(dataset)
    for key, ids in p.subsets.items():
        out[key] = _nanmean(per_class.get(c, math.nan) for c in p.class_names(ids))
    out['tail'] = _nanmean(per_class.get(c, math.nan) for c in tail_classes(dataset))
    return out


# ----------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Result:
    path: Path
    exp: int
    spec: RunSpec
    seed: int
    iter: int | None
    per_class: dict[str, float]
    # A warm start (``exp_meta.warm_start``): its experiment's common start, which may share a
    # row's spec (experiment 0's is a source-only run) but is no row's seed.
    warm_start: bool = False


def read_result(path: Path) -> Result:
    """Parse one final_metrics.json; raises ValueError naming the file and the problem."""
    try:
        data = json.loads(path.read_text())
        meta = data['exp_meta']
        per_class = {str(k): float('nan') if v is None else float(v)
                     for k, v in data['per_class_iou'].items()}
        result = Result(path, int(meta['exp']), RunSpec.from_meta(meta), int(meta['seed']),
                        data.get('iter'), per_class, bool(meta.get('warm_start')))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f'{path}: not a valid {FINAL_METRICS} ({type(e).__name__}: {e})') from e
    unknown = set(per_class) - set(CLASSES)
    if unknown:
        raise ValueError(f'{path}: per_class_iou has unknown class names {sorted(unknown)}; '
                         f'expected mmseg CityscapesDataset.CLASSES')
    return result


def load_results(root: Path) -> list[Result]:
    """Every readable final_metrics.json below ``root`` but warm starts'; unreadable ones are
    warned about."""
    results = []
    for path in sorted(root.rglob(FINAL_METRICS)):
        try:
            result = read_result(path)
        except ValueError as e:
            warnings.warn(f'skipped {e}', stacklevel=2)
            continue
        if not result.warm_start:
            results.append(result)
    return results


def group_by_run(results: Iterable[Result]) -> dict[tuple[int, RunSpec], dict[int, Result]]:
    """(exp, spec) -> seed -> result. Two results of one seed: the later iteration wins."""
    groups: dict[tuple[int, RunSpec], dict[int, Result]] = {}
    for r in results:
        seeds = groups.setdefault((r.exp, r.spec), {})
        other = seeds.get(r.seed)
        if other is not None:
            newest_first = sorted((r, other), key=lambda x: (x.iter or 0, x.path.stat().st_mtime))
            keep, drop = newest_first[::-1]
            warnings.warn(f'two results for one seed: using {keep.path}, ignoring {drop.path}',
                          stacklevel=2)
            r = keep
        seeds[r.seed] = r
    return groups


# ----------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Stat:
    values: dict[int, float]   # seed -> value; NaN values are left out

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.values.values()))) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof=1); None below two seeds."""
        return float(np.std(list(self.values.values()), ddof=1)) if self.n > 1 else None


def _stat(values: dict[int, float]) -> Stat:
    return Stat({s: v for s, v in sorted(values.items()) if not math.isnan(v)})


@dataclass(frozen=True)
class PairedDiff(Stat):
    """A row minus its baseline, seed by seed (the same seed is the same data order and
    initialisation), over the seeds both have: the mean difference with a 95 % Student-t
    interval, n − 1 degrees of freedom."""

    @property
    def interval(self) -> tuple[float, float] | None:
        """None below two seeds."""
        if self.n < 2:
            return None
        from scipy.stats import t
        half = float(t.ppf(0.975, self.n - 1)) * self.std / math.sqrt(self.n)
        return self.mean - half, self.mean + half

    @property
    def resolved(self) -> bool | None:
        """Whether the interval excludes 0; None without an interval."""
        interval = self.interval
        return None if interval is None else not interval[0] <= 0.0 <= interval[1]


def paired_diff(row: Stat, base: Stat) -> PairedDiff:
    common = sorted(set(row.values) & set(base.values))
    return PairedDiff({s: row.values[s] - base.values[s] for s in common})


@dataclass
class RowReport:
    row: TableRow
    seeds_found: list[int]
    seeds_missing: list[int]
    stats: dict[str, Stat]
    paper: dict[str, float] = field(default_factory=dict)
    gain: float | None = None          # summary tables: our headline mean minus the baseline's
    paper_gain: float | None = None
    # Against the same row with cross entropy (RunSpec.baseline): its label and, for the
    # headline mIoU and the tail mIoU, the paired difference over seeds.
    baseline_label: str | None = None
    paired: dict[str, PairedDiff] = field(default_factory=dict)


@dataclass
class TableReport:
    table: Table
    exp: int
    rows: list[RowReport]

    @property
    def has_paper(self) -> bool:
        return any(r.paper for r in self.rows)


def paper_values(row: TableRow) -> dict[str, float]:
    """The paper's numbers of a row, with mIoU13/tail computed from its per-class values."""
    if row.paper is None:
        return {}
    node: Any = PAPER
    for key in row.paper:
        node = node[key]
    dataset = row.spec.dataset
    if not isinstance(node, dict):
        return {headline_metric(dataset): float(node)}
    if 'per_class_iou' not in node:  # Table 5: the headline mIoU and the tail mIoU only
        return {headline_metric(dataset): float(node['miou']), 'tail': float(node['miou_tail'])}
    out = {k: float(v) for k, v in node['per_class_iou'].items()}
    out['tail'] = _nanmean(out[c] for c in tail_classes(dataset))
    out.update({k: float(node[k]) for k in ('miou19', 'miou16', 'miou13') if k in node})
    return out


def metric_names(table: Table, dataset: str) -> list[str]:
    if table.kind == 'summary':
        return [headline_metric(dataset), 'tail']
    return [*evaluated_classes(dataset), *protocol(dataset).reported, 'tail']


def row_report(row: TableRow, table: Table, seeds: dict[int, Result],
               expected: Sequence[int]) -> RowReport:
    dataset = row.spec.dataset
    per_seed = {s: {**r.per_class, **summary_metrics(r.per_class, dataset)}
                for s, r in seeds.items()}
    stats = {m: _stat({s: v.get(m, math.nan) for s, v in per_seed.items()})
             for m in metric_names(table, dataset)}
    return RowReport(row, sorted(seeds), [s for s in expected if s not in seeds], stats,
                     paper_values(row))


def _with_baselines(report: TableReport) -> Iterable[tuple[RowReport, RowReport]]:
    """Each row of the table with its baseline row there: the row its ``versus`` names, else
    the same data set, method and backbone with cross entropy (`RunSpec.baseline`)."""
    baselines = {r.row.spec: r for r in report.rows if r.row.spec == r.row.spec.baseline()}
    by_label = {r.row.label: r for r in report.rows}
    for r in report.rows:
        if r.row.versus is not None and r.row.versus not in by_label:
            raise ValueError(f'table {report.table.id!r}: row {r.row.label!r} is paired against '
                             f'{r.row.versus!r}, which is no row of the table '
                             f'({sorted(by_label)})')
        base = (by_label[r.row.versus] if r.row.versus is not None
                else baselines.get(r.row.spec.baseline()))
        if base is not None and base is not r:
            yield r, base


def _add_paired(report: TableReport) -> None:
    """Each row that has a cross-entropy baseline in its table: the paired differences."""
    for r, base in _with_baselines(report):
        r.baseline_label = base.row.label
        for metric in (headline_metric(r.row.spec.dataset), 'tail'):
            r.paired[metric] = paired_diff(r.stats[metric], base.stats[metric])


def _add_gains(report: TableReport) -> None:
    """Gain of each row over its table's baseline row: the same data set, method and backbone
    with cross entropy (`RunSpec.baseline`)."""
    for r, base in _with_baselines(report):
        metric = headline_metric(r.row.spec.dataset)
        ours, theirs = r.stats[metric].mean, base.stats[metric].mean
        if ours is not None and theirs is not None:
            r.gain = ours - theirs
        if metric in r.paper and metric in base.paper:
            r.paper_gain = r.paper[metric] - base.paper[metric]


class MixedSettingsError(ValueError):
    """Seeds of one row that were trained with different settings."""


def check_same_settings(groups: dict[tuple[int, RunSpec], dict[int, Result]]) -> None:
    """The seeds averaged into one row must share their settings: the same exp_meta apart from
    the seed (the spec, by construction) and the same number of iterations."""
    mixed = []
    for (exp, spec), seeds in sorted(groups.items(), key=lambda kv: str(kv[0])):
        iterations = {r.iter for r in seeds.values()}
        if len(iterations) > 1:
            runs = ', '.join(f'seed {s}: {r.iter} iterations ({r.path})'
                             for s, r in sorted(seeds.items()))
            mixed.append(f'exp {exp} {spec}: {runs}')
    if mixed:
        raise MixedSettingsError(
            'runs that differ in their settings would be averaged into one row:\n  '
            + '\n  '.join(mixed) + '\nRerun them with one setting (run_experiments.py --force), '
            'or pass --allow-mixed-settings to average them anyway.')


def analyze(results: Sequence[Result], exps: Sequence[Experiment],
            seeds: Sequence[int] | None = None, allow_mixed_settings: bool = False
            ) -> tuple[list[TableReport], list[Result]]:
    """Table reports for ``exps`` and the results that fit no table row of them. Seeds of one
    row trained with different settings are an error unless ``allow_mixed_settings``."""
    groups = group_by_run(results)
    if not allow_mixed_settings:
        check_same_settings(groups)
    reports, used = [], set()
    for exp in exps:
        expected = list(exp.seeds if seeds is None else seeds)
        for table in exp.tables:
            rows = []
            for row in table.rows:
                owner = exp.shared_spec_owner(row.spec) or exp.id
                found = groups.get((owner, row.spec), {})
                used.add((owner, row.spec))
                rows.append(row_report(row, table, found, expected))
            report = TableReport(table, exp.id, rows)
            if table.kind == 'summary':
                _add_gains(report)
            _add_paired(report)
            reports.append(report)
    ids = {exp.id for exp in exps}  # a shared experiment's other runs are not "unmatched" here
    unmatched = [r for key, runs in groups.items() if key[0] in ids and key not in used
                 for r in runs.values()]
    return reports, unmatched


# ----------------------------------------------------------------------------- rendering

_LABELS = {'miou19': 'mIoU19', 'miou16': 'mIoU16', 'miou13': 'mIoU13', 'tail': 'tail mIoU'}


def fmt_stat(stat: Stat) -> str:
    if stat.n == 0:
        return '– (0)'
    std = '–' if stat.std is None else f'{stat.std:.1f}'
    return f'{stat.mean:.1f} ± {std} ({stat.n})'


def fmt_num(x: float | None, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return '–'
    return f'{x:+.1f}' if signed else f'{x:.1f}'


def _diff(stat: Stat, paper: float | None) -> float | None:
    return None if stat.mean is None or paper is None else stat.mean - paper


def _md_row(cells: Sequence[str]) -> str:
    return '| ' + ' | '.join(cells) + ' |'


def _missing_lines(report: TableReport) -> list[str]:
    lines = []
    for r in report.rows:
        if r.seeds_missing:
            where = f' ({r.row.spec.dataset})' if report.table.kind == 'summary' else ''
            lines.append(f'- missing seeds of {r.row.label}{where}: '
                         + ', '.join(map(str, r.seeds_missing))
                         + (' (no run found)' if not r.seeds_found else ''))
    return lines


def render_per_class(report: TableReport) -> list[str]:
    dataset = report.rows[0].row.spec.dataset
    metrics = metric_names(report.table, dataset)
    lines = [_md_row(['Method', '', *(_LABELS.get(m, m) for m in metrics)]),
             _md_row(['---', '---', *('---:' for _ in metrics)])]
    for r in report.rows:
        lines.append(_md_row([r.row.label, 'ours', *(fmt_stat(r.stats[m]) for m in metrics)]))
        if report.has_paper:
            lines.append(_md_row(['', 'paper', *(fmt_num(r.paper.get(m)) for m in metrics)]))
            lines.append(_md_row(['', 'Δ', *(fmt_num(_diff(r.stats[m], r.paper.get(m)), True)
                                             for m in metrics)]))
    return lines


def render_headline(report: TableReport) -> list[str]:
    """The per-class table's means at a glance: one line per row, paper and Δ beside."""
    metrics = [m for m in metric_names(report.table, report.rows[0].row.spec.dataset)
               if m in _LABELS]
    header = ['Method']
    for m in metrics:
        header += [_LABELS[m], 'paper', 'Δ'] if report.has_paper else [_LABELS[m]]
    lines = [_md_row(header), _md_row(['---', *('---:' for _ in header[1:])])]
    for r in report.rows:
        cells = [r.row.label]
        for m in metrics:
            cells.append(fmt_stat(r.stats[m]))
            if report.has_paper:
                cells += [fmt_num(r.paper.get(m)), fmt_num(_diff(r.stats[m], r.paper.get(m)), True)]
        lines.append(_md_row(cells))
    return lines


def render_summary(report: TableReport) -> list[str]:
    lines = [_md_row(['Data set', 'Setting', 'mIoU (ours)', 'paper', 'Δ', 'gain (ours)',
                      'gain (paper)', 'tail mIoU (ours)']),
             _md_row(['---', '---', *('---:' for _ in range(6))])]
    for r in report.rows:
        metric = headline_metric(r.row.spec.dataset)
        stat = r.stats[metric]
        lines.append(_md_row([f'{r.row.spec.dataset} ({_LABELS[metric]})', r.row.label,
                              fmt_stat(stat), fmt_num(r.paper.get(metric)),
                              fmt_num(_diff(stat, r.paper.get(metric)), True),
                              fmt_num(r.gain, True), fmt_num(r.paper_gain, True),
                              fmt_stat(r.stats['tail'])]))
    return lines


def fmt_paired(diff: PairedDiff) -> str:
    if diff.n == 0:
        return '– (0)'
    interval = diff.interval
    if interval is None:
        return f'{diff.mean:+.1f} (1 seed: no interval)'
    verdict = '' if diff.resolved else ', not resolved'
    return f'{diff.mean:+.1f} [{interval[0]:+.1f}, {interval[1]:+.1f}] ({diff.n}{verdict})'


def render_paired(report: TableReport) -> list[str]:
    """Paired differences against the baseline row, one line per row that has one."""
    rows = [r for r in report.rows if r.paired]
    if not rows:
        return []
    lines = ['Paired differences over seeds against the same row with cross entropy (or the '
             'row in "vs"): mean '
             '[95 % Student-t interval] (seeds; "not resolved" when the interval holds 0).', '',
             _md_row(['Method', 'vs', 'Δ mIoU', 'Δ tail mIoU']),
             _md_row(['---', '---', '---:', '---:'])]
    for r in rows:
        metric = headline_metric(r.row.spec.dataset)
        lines.append(_md_row([r.row.label, r.baseline_label or '',
                              f'{_LABELS[metric]}: {fmt_paired(r.paired[metric])}',
                              fmt_paired(r.paired['tail'])]))
    return lines


def render_markdown(reports: Sequence[TableReport], unmatched: Sequence[Result] = ()) -> str:
    out = []
    for report in reports:
        versus = ' Δ = ours − paper.' if report.has_paper else ''
        out += [f'### {report.table.title} (experiment {report.exp})', '',
                f'Cells: {STD_NOTE}.{versus} tail mIoU = mean IoU over the paper\'s tail '
                f'classes ({", ".join(TAIL)}; SYNTHIA: the 7 it has).', '']
        if report.table.kind == 'per_class':
            out += render_per_class(report) + [''] + render_headline(report)
        else:
            out += render_summary(report)
        paired = render_paired(report)
        out += [''] + paired if paired else []
        missing = _missing_lines(report)
        out += ([''] + missing if missing else []) + ['']
    if unmatched:
        out.append(f'{len(unmatched)} result(s) fit no table row: '
                   + ', '.join(str(r.path.parent.name) for r in unmatched))
    return '\n'.join(out).rstrip() + '\n'


def _stat_json(stat: Stat, paper: float | None) -> dict[str, Any]:
    return dict(mean=stat.mean, std=stat.std, n=stat.n,
                values={str(s): v for s, v in stat.values.items()},
                paper=paper, diff=_diff(stat, paper))


def to_json(reports: Sequence[TableReport], unmatched: Sequence[Result] = ()) -> dict[str, Any]:
    experiments: dict[str, Any] = {}
    for report in reports:
        exp = experiments.setdefault(str(report.exp), dict(
            title=EXPERIMENTS[report.exp].title if report.exp in EXPERIMENTS else '', tables=[]))
        exp['tables'].append(dict(
            id=report.table.id, title=report.table.title, kind=report.table.kind,
            rows=[dict(label=r.row.label, run=r.row.spec.meta(), seeds_found=r.seeds_found,
                       seeds_missing=r.seeds_missing, gain=r.gain, paper_gain=r.paper_gain,
                       metrics={m: _stat_json(s, r.paper.get(m)) for m, s in r.stats.items()},
                       paired_vs=r.baseline_label,
                       paired={m: dict(mean=d.mean, n=d.n, interval=d.interval,
                                       resolved=d.resolved) for m, d in r.paired.items()})
                  for r in report.rows]))
    return dict(std='sample standard deviation over seeds (ddof=1); null when n < 2',
                experiments=experiments, unmatched=[str(r.path) for r in unmatched])


# ----------------------------------------------------------------------------- Figure 3


def _candidate_configs(result: Result) -> list[Path]:
    """The configs a run was trained from: copies in its work dir, then the generated one."""
    work_dir = result.path.parent
    local = sorted(p for p in work_dir.glob('*.json') if p.name != FINAL_METRICS)
    return local + [GENERATED_DIR / f'exp{result.exp}' / f'{work_dir.name}.json']


def find_source_stats(results: Iterable[Result], dataset: str) -> Path | None:
    """The source ``sample_class_stats.json`` named by the config of a run on ``dataset``."""
    for result in results:
        if result.spec.dataset != dataset:
            continue
        for config in _candidate_configs(result):
            try:
                rel = source_stats_path(json.loads(config.read_text()))
            except (OSError, ValueError, KeyError, AttributeError):
                continue
            for base in (REPO_ROOT, Path.cwd()):
                if (base / rel).is_file():
                    return base / rel
    return None


def source_frequencies(stats_path: Path) -> dict[str, float]:
    from blv_patches import read_class_stats
    counts = read_class_stats(stats_path)
    return {c: float(n) / float(counts.sum()) for c, n in zip(CLASSES, counts)}


def blv_gains(report: TableReport) -> list[tuple[RowReport, dict[str, float]]]:
    """Per-class IoU gain (mean over seeds) of each BLV row over its cross-entropy row."""
    out = []
    for r, base in _with_baselines(report):
        if r.row.spec.blv is None:
            continue
        gains = {c: r.stats[c].mean - base.stats[c].mean
                 for c in evaluated_classes(r.row.spec.dataset)
                 if r.stats[c].mean is not None and base.stats[c].mean is not None}
        if gains:
            out.append((r, gains))
    return out


def _slug(text: str) -> str:
    return re.sub(r'[^a-z0-9]+', '_', text.lower()).strip('_')


# Label positions tried in turn, in points from the marker: right, above, below, left, further.
_LABEL_OFFSETS = [(4, 2), (4, 9), (4, -9), (-4, 2), (-4, 9), (-4, -9), (4, 16), (4, -16),
                  (-4, 16), (-4, -16), (4, 23), (4, -23), (-4, 23), (-4, -23), (4, 30), (4, -30)]


def place_labels(ax, points: Sequence[tuple[float, float]], labels: Sequence[str],
                 fontsize: float = 7) -> list:
    """Annotate each point with its label at the first offset whose box overlaps no marker and
    no label placed before (greedy, from the left); a leader line joins a label moved away from
    its point. Returns the text artists."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # fixes the transforms and the renderer that measures text
    renderer = fig.canvas.get_renderer()
    marker = 4.0 * fig.dpi / 72  # half a marker's width, in pixels
    placed = [Bbox.from_extents(x - marker, y - marker, x + marker, y + marker)
              for x, y in ax.transData.transform(points)]
    texts = []

    def label(i: int, dx: float, dy: float):
        text = ax.annotate(labels[i], points[i], xytext=(dx, dy), textcoords='offset points',
                           fontsize=fontsize, ha='left' if dx > 0 else 'right', va='center')
        return text, text.get_window_extent(renderer).expanded(1.05, 1.1)

    for i in sorted(range(len(points)), key=lambda i: points[i]):
        for dx, dy in _LABEL_OFFSETS:
            text, box = label(i, dx, dy)
            if not any(box.overlaps(other) for other in placed):
                break
            text.remove()
        else:  # every position taken: the first one, overlapping
            dx, dy = _LABEL_OFFSETS[0]
            text, box = label(i, dx, dy)
        if abs(dy) > 2:
            ax.annotate('', points[i], xytext=(dx, dy), textcoords='offset points',
                        arrowprops=dict(arrowstyle='-', lw=0.5, color='gray'))
        placed.append(box)
        texts.append(text)
    return texts


def plot_figure3(reports: Sequence[TableReport], out_dir: Path,
                 stats_paths: dict[str, Path]) -> list[Path]:
    """One PNG per BLV row of the per-class tables: source pixel frequency vs IoU gain."""
    import matplotlib
    matplotlib.use('Agg')  # no display on servers
    import matplotlib.pyplot as plt

    written = []
    for report in reports:
        if report.table.kind != 'per_class':
            continue
        for row, gains in blv_gains(report):
            dataset = row.row.spec.dataset
            if dataset not in stats_paths:
                continue
            freq = source_frequencies(stats_paths[dataset])
            classes = [c for c in gains if freq.get(c, 0) > 0]  # log axis: absent classes out
            fig, ax = plt.subplots(figsize=(8, 5))
            for c in classes:
                tail = c in TAIL
                ax.scatter(freq[c], gains[c], color='tab:red' if tail else 'tab:blue', s=25)
            ax.axhline(0, color='gray', lw=0.8)
            ax.set_xscale('log')
            ax.set_xlabel('pixel frequency in the source training set')
            ax.set_ylabel('IoU gain from BLV (points, mean over seeds)')
            ax.set_title(f'{row.row.label} vs without BLV, {dataset} (red: tail classes)',
                         fontsize=9)
            fig.tight_layout()  # before the labels: they are placed in the final layout
            place_labels(ax, [(freq[c], gains[c]) for c in classes], classes)
            out_dir.mkdir(parents=True, exist_ok=True)
            name = f'fig3_exp{report.exp}_table{report.table.id}_{_slug(row.row.label)}.png'
            path = out_dir / name
            fig.savefig(path, dpi=120)
            plt.close(fig)
            written.append(path)
    return written


def stats_for_plots(results: Sequence[Result], given: dict[str, Path]) -> dict[str, Path]:
    """Source statistics per data set: the ones given, else those named by the runs' configs."""
    found = dict(given)
    for dataset in {r.spec.dataset for r in results} - set(given):
        path = find_source_stats(results, dataset)
        if path is not None:
            found[dataset] = path
        else:
            warnings.warn(f'no source class statistics found for {dataset}; pass '
                          f'--source-stats {dataset}=PATH/sample_class_stats.json to plot it',
                          stacklevel=2)
    return found


def experiments_for(results: Sequence[Result], exp_id: int | None) -> list[Experiment]:
    ids = [exp_id] if exp_id is not None else sorted({r.exp for r in results})
    unknown = [i for i in ids if i not in EXPERIMENTS]
    if unknown:
        warnings.warn(f'results of unknown experiment id(s) {unknown} are left out; '
                      f'defined: {sorted(EXPERIMENTS)}', stacklevel=2)
    return [EXPERIMENTS[i] for i in ids if i in EXPERIMENTS]
