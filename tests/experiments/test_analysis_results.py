"""tools/analyze_results.py on fabricated final_metrics.json files, against hand computations."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from experiments_helpers import (
    R101_GTA,
    R101_GTA_BLV,
    R101_SYN,
    index_iou,
    load_script,
    meta,
    write_final_metrics,
)
from mmseg.datasets import CityscapesDataset

from mmseg_uda.experiments import EXP0, EXP40, RunSpec
from mmseg_uda.experiments.analysis import (
    CLASSES,
    SYNTHIA13,
    SYNTHIA16,
    TAIL,
    analyze,
    blv_gains,
    find_source_stats,
    load_results,
    paper_values,
    plot_figure3,
    render_markdown,
    summary_metrics,
    to_json,
)

SQRT_7_3 = math.sqrt(7 / 3)  # sample std (ddof=1) of the offsets -1, 0, +2


def _report(reports, table_id):
    return next(r for r in reports if r.table.id == table_id)


def _row(report, label):
    return next(r for r in report.rows if r.row.label == label)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """GTA R101 baseline: 3 seeds (offsets -1, 0, +2); GTA R101+BLV: seed 0 only (offset +5);
    SYNTHIA R101 baseline: seeds 0 and 1 (offsets 0, +1), seed 2 missing."""
    for seed, off in zip((0, 1, 2), (-1.0, 0.0, 2.0)):
        write_final_metrics(tmp_path / f'gta_base_s{seed}', R101_GTA, seed, index_iou(off))
    write_final_metrics(tmp_path / 'gta_blv_s0', R101_GTA_BLV, 0, index_iou(5.0))
    for seed, off in zip((0, 1), (0.0, 1.0)):
        syn = {c: v for c, v in index_iou(off).items() if c in SYNTHIA16}
        write_final_metrics(tmp_path / 'nested' / f'syn_base_s{seed}', R101_SYN, seed, syn)
    return tmp_path


def test_class_names_are_mmseg_cityscapes_classes():
    assert CLASSES == tuple(CityscapesDataset.CLASSES)
    assert set(SYNTHIA13) < set(SYNTHIA16) < set(CLASSES) and len(SYNTHIA13) == 13


def test_summary_metrics_by_hand():
    iou = index_iou()
    gta = summary_metrics(iou, 'gta2cs')
    # 0+1+...+18 = 171 -> 9.0; tail ids 3,6,7,12,14,15,16,17,18 sum to 108 -> 12.0
    assert gta == pytest.approx(dict(miou19=9.0, tail=12.0))
    syn = summary_metrics(iou, 'syn2cs')
    # 16 classes: 171 - (9 + 14 + 16) = 132; 13: 132 - (3 + 4 + 5) = 120;
    # tail without truck/train: 3+6+7+12+15+17+18 = 78 over 7
    assert syn == pytest.approx(dict(miou19=9.0, miou16=132 / 16, miou13=120 / 13, tail=78 / 7))


def test_nan_class_is_left_out_of_the_mean():
    iou = index_iou()
    iou['train'] = float('nan')  # class 16: absent from the validation labels
    assert summary_metrics(iou, 'gta2cs')['miou19'] == pytest.approx((171 - 16) / 18)


def test_paper_tail_miou_matches_table5():
    """Table 5 reports 45.7 tail mIoU for DAFormer-R101+BLV; our tail set gives the same."""
    row = next(r for r in EXP40.tables[0].rows if r.label == 'DAFormer† (R101) w/ BLV')
    assert paper_values(row)['tail'] == pytest.approx(45.7, abs=0.05)
    assert len(TAIL) == 9


def test_seed_statistics_by_hand(sweep):
    reports, unmatched = analyze(load_results(sweep), [EXP40])
    assert unmatched == []
    base = _row(_report(reports, 3), 'DAFormer† (R101)')
    assert base.seeds_found == [0, 1, 2] and base.seeds_missing == []
    assert base.stats['road'].mean == pytest.approx(1 / 3)
    assert base.stats['road'].std == pytest.approx(SQRT_7_3)
    assert base.stats['miou19'].mean == pytest.approx(9 + 1 / 3)
    assert base.stats['tail'].mean == pytest.approx(12 + 1 / 3)
    assert base.stats['tail'].std == pytest.approx(SQRT_7_3)
    assert base.paper['road'] == 94.6 and base.paper['miou19'] == 55.9

    syn = _row(_report(reports, 4), 'DAFormer† (R101)')
    assert syn.seeds_found == [0, 1] and syn.seeds_missing == [2]
    assert syn.stats['miou16'].mean == pytest.approx(132 / 16 + 0.5)
    assert syn.stats['miou16'].std == pytest.approx(math.sqrt(0.5))
    assert syn.stats['miou13'].mean == pytest.approx(120 / 13 + 0.5)
    assert syn.stats['tail'].mean == pytest.approx(78 / 7 + 0.5)
    assert 'terrain' not in syn.stats  # SYNTHIA tables have 16 classes

    blv = _row(_report(reports, 3), 'DAFormer† (R101) w/ BLV')
    assert blv.stats['miou19'].n == 1 and blv.stats['miou19'].std is None


def test_shared_run_serves_every_table(sweep):
    reports, _ = analyze(load_results(sweep), [EXP40])
    for table_id in (3, 6, 7, 8):
        rows = [r for r in _report(reports, table_id).rows if r.row.spec == R101_GTA]
        assert len(rows) == 1 and rows[0].stats['miou19'].n == 3, table_id


def test_summary_gain_over_baseline(sweep):
    reports, _ = analyze(load_results(sweep), [EXP40])
    sigma6 = _row(_report(reports, 7), 'σ=6')  # the GTA one comes first
    assert sigma6.row.spec == R101_GTA_BLV
    assert sigma6.gain == pytest.approx((9 + 5) - (9 + 1 / 3))
    assert sigma6.paper_gain == pytest.approx(59.0 - 55.9)


def test_markdown_cells_and_missing_seeds(sweep):
    text = render_markdown(*analyze(load_results(sweep), [EXP40]))
    assert 'ddof=1' in text
    t3 = text.split('### Table 3')[1].split('###')[0]
    base_line = next(line for line in t3.splitlines() if line.startswith('| DAFormer† (R101) |'))
    cells = [c.strip() for c in base_line.strip('|').split('|')]
    assert cells[1] == 'ours' and cells[2] == '0.3 ± 1.5 (3)'          # road
    assert cells[-2:] == ['9.3 ± 1.5 (3)', '12.3 ± 1.5 (3)']           # mIoU19, tail
    lines = t3.splitlines()
    paper = lines[lines.index(base_line) + 1]
    delta = lines[lines.index(base_line) + 2]
    assert '| paper | 94.6 |' in paper and '| Δ | -94.3 |' in delta
    assert '17.0 ± – (1)' in t3                                        # BLV tail, n = 1
    assert '– (0)' in t3                                               # rows with no run
    assert '- missing seeds of DAFormer† (R101) w/ BLV: 1, 2' in t3
    assert '- missing seeds of HRDA‡ (MiT-B5): 0, 1, 2 (no run found)' in t3
    t4 = text.split('### Table 4')[1].split('###')[0]
    assert 'mIoU16' in t4 and 'mIoU13' in t4 and 'Terrain' not in t4 and '| terrain' not in t4
    assert '- missing seeds of DAFormer† (R101): 2' in t4
    # headline table: paper tail = (39.5+49.6+60.0+44.4+46.8+56.8+0.0+17.8+44.3) / 9 = 39.91
    assert ('| DAFormer† (R101) | 9.3 ± 1.5 (3) | 55.9 | -46.6 | 12.3 ± 1.5 (3) | 39.9 | -27.6 |'
            in t3)
    assert '| Method | mIoU16 | paper | Δ | mIoU13 | paper | Δ | mIoU19 | paper | Δ |' in t4


def test_expected_seeds_can_be_narrowed(sweep):
    reports, _ = analyze(load_results(sweep), [EXP40], seeds=[0])
    assert _row(_report(reports, 4), 'DAFormer† (R101)').seeds_missing == []


def test_json_output(sweep):
    data = to_json(*analyze(load_results(sweep), [EXP40]))
    t3 = next(t for t in data['experiments']['40']['tables'] if t['id'] == 3)
    row = next(r for r in t3['rows'] if r['label'] == 'DAFormer† (R101)')
    road = row['metrics']['road']
    assert road['n'] == 3 and road['values'] == {'0': -1.0, '1': 0.0, '2': 2.0}
    assert road['mean'] == pytest.approx(1 / 3) and road['std'] == pytest.approx(SQRT_7_3)
    assert road['paper'] == 94.6 and road['diff'] == pytest.approx(1 / 3 - 94.6)
    assert row['run'] == R101_GTA.meta()
    json.dumps(data)  # plain JSON, no numpy scalars


def test_duplicate_seed_keeps_the_later_iteration(tmp_path):
    write_final_metrics(tmp_path / 'a', R101_GTA, 0, index_iou(0.0), iteration=40000)
    write_final_metrics(tmp_path / 'b', R101_GTA, 0, index_iou(100.0), iteration=4000)
    with pytest.warns(UserWarning, match='two results for one seed'):
        reports, _ = analyze(load_results(tmp_path), [EXP40])
    assert _row(_report(reports, 3), 'DAFormer† (R101)').stats['road'].values == {0: 0.0}


def test_bad_files_are_named_and_skipped(tmp_path):
    write_final_metrics(tmp_path / 'good', R101_GTA, 0, index_iou())
    (tmp_path / 'broken').mkdir()
    (tmp_path / 'broken' / 'final_metrics.json').write_text('{"exp_meta": {}}')
    bad_class = write_final_metrics(tmp_path / 'renamed', R101_GTA, 1, {'Road': 1.0})
    with pytest.warns(UserWarning) as caught:
        results = load_results(tmp_path)
    messages = ' '.join(str(w.message) for w in caught)
    assert 'broken/final_metrics.json' in messages and str(bad_class) in messages
    assert [r.seed for r in results] == [0]


def test_unmatched_results_are_reported(tmp_path):
    odd = RunSpec('gta2cs', 'source_only', 'mitb5')
    write_final_metrics(tmp_path / 'odd', odd, 0, index_iou())
    reports, unmatched = analyze(load_results(tmp_path), [EXP40])
    assert [r.path.parent.name for r in unmatched] == ['odd']
    assert '1 result(s) fit no table row: odd' in render_markdown(reports, unmatched)


def test_a_warm_start_is_no_seed_of_the_row_whose_spec_it_shares(tmp_path):
    """Experiment 0's warm start is a source-only run on the source: not seed 0 of the
    source-only row (it trained longer, so it would win as 'the later iteration')."""
    spec = EXP0.warm_start.spec
    path = write_final_metrics(tmp_path / 'warm', spec, 0, index_iou(50.0), exp=0,
                               iteration=2000)
    path.write_text(json.dumps(dict(json.loads(path.read_text()), exp_meta=dict(
        meta(spec, 0, exp=0, tables=()), warm_start=True))))
    write_final_metrics(tmp_path / 'row', spec, 0, index_iou(), exp=0, iteration=800)
    results = load_results(tmp_path)
    assert [r.path.parent.name for r in results] == ['row']
    reports, unmatched = analyze(results, [EXP0])
    assert unmatched == [] and reports[0].rows[0].stats['road'].mean == index_iou()['road']


def _write_stats(path: Path) -> Path:
    """Two images' class pixel counts in the converters' sample_class_stats.json format."""
    counts = [{str(i): 1000 * (19 - i) for i in range(19)} | {'file': 'a.png'},
              {str(i): 1000 for i in range(19)} | {'file': 'b.png'}]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(counts))
    return path


def test_figure3_gains_and_png(sweep, tmp_path):
    reports, _ = analyze(load_results(sweep), [EXP40])
    [(row, gains)] = blv_gains(_report(reports, 3))
    assert row.row.label == 'DAFormer† (R101) w/ BLV'
    assert gains['bicycle'] == pytest.approx(5 - 1 / 3)
    stats = _write_stats(tmp_path / 'gta' / 'sample_class_stats.json')
    written = plot_figure3(reports, tmp_path / 'fig', {'gta2cs': stats})
    names = sorted(p.name for p in written)
    assert 'fig3_exp40_table3_daformer_r101_w_blv.png' in names
    assert all(p.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' for p in written)


def test_source_stats_found_through_the_runs_config(sweep, tmp_path):
    stats = _write_stats(tmp_path / 'data' / 'gta' / 'sample_class_stats.json')
    config = dict(data=dict(train=dict(source=dict(data_root=str(stats.parent) + '/'))))
    (sweep / 'gta_blv_s0' / 'gta_blv_s0.json').write_text(json.dumps(config))
    results = load_results(sweep)
    assert find_source_stats(results, 'gta2cs') == stats
    assert find_source_stats(results, 'syn2cs') is None


def test_cli_prints_tables_and_writes_json_and_plots(sweep, tmp_path, capsys):
    stats = _write_stats(tmp_path / 'stats' / 'sample_class_stats.json')
    out = tmp_path / 'out.json'
    code = load_script('tools/analyze_results.py').main([
        str(sweep), '--exp', '40', '--json', str(out),
                             '--plot', str(tmp_path / 'fig'), '--source-stats',
                             f'gta2cs={stats}'])
    printed = capsys.readouterr().out
    assert code == 0
    for title in ('Table 3', 'Table 4', 'Table 6', 'Table 7', 'Table 8'):
        assert f'### {title}' in printed
    assert json.loads(out.read_text())['experiments']['40']['tables'][0]['id'] == 3
    assert (tmp_path / 'fig' / 'fig3_exp40_table3_daformer_r101_w_blv.png').is_file()


def test_cli_empty_root_fails(tmp_path, capsys):
    assert load_script('tools/analyze_results.py').main([str(tmp_path)]) == 1
    assert 'no final_metrics.json' in capsys.readouterr().err


def test_the_analysis_refuses_to_average_runs_of_different_lengths(tmp_path, capsys):
    """Probe 10: 40- and 800-iteration runs of one row were averaged without a warning."""
    write_final_metrics(tmp_path / 's0', R101_GTA, 0, index_iou(0.0), iteration=800)
    write_final_metrics(tmp_path / 's1', R101_GTA, 1, index_iou(2.0), iteration=40)
    tool = load_script('tools/analyze_results.py')
    assert tool.main([str(tmp_path), '--exp', '40']) == 1
    err = capsys.readouterr().err
    assert 'seed 0: 800 iterations' in err and 'seed 1: 40 iterations' in err
    assert '--allow-mixed-settings' in err
    assert tool.main([str(tmp_path), '--exp', '40', '--allow-mixed-settings']) == 0


def test_paired_differences_and_their_student_t_interval_by_hand():
    from mmseg_uda.experiments.analysis import Stat, paired_diff
    base = Stat({0: 10.0, 1: 12.0, 2: 11.0, 3: 50.0})
    diff = paired_diff(Stat({0: 12.0, 1: 13.0, 2: 14.0}), base)   # seed 3 has no partner
    assert diff.values == {0: 2.0, 1: 1.0, 2: 3.0}
    # mean 2, sample std 1, t(0.975, 2) = 4.302653: half-width 4.302653 / sqrt(3) = 2.48414
    lo, hi = diff.interval
    assert (lo, hi) == pytest.approx((2 - 2.48414, 2 + 2.48414), abs=1e-5)
    assert diff.resolved is False
    tight = paired_diff(Stat({0: 12.0, 1: 14.5, 2: 14.0}), base)  # 2, 2.5, 3: std 0.5
    assert tight.interval == pytest.approx((2.5 - 1.24207, 2.5 + 1.24207), abs=1e-5)
    assert tight.resolved is True
    assert paired_diff(Stat({0: 1.0}), base).interval is None


def test_the_tables_show_paired_differences_against_the_ce_row(sweep):
    reports, _ = analyze(load_results(sweep), [EXP40])
    blv = _row(_report(reports, 3), 'DAFormer† (R101) w/ BLV')
    assert blv.baseline_label == 'DAFormer† (R101)'
    assert blv.paired['miou19'].values == {0: pytest.approx(6.0)}   # +5 vs -1 on seed 0
    text = render_markdown(reports)
    assert '| DAFormer† (R101) w/ BLV | DAFormer† (R101) | mIoU19: +6.0 (1 seed: no interval) |' \
        in text
    rows = to_json(reports)['experiments']['40']['tables'][0]['rows']
    row = next(r for r in rows if r['label'] == 'DAFormer† (R101) w/ BLV')
    assert row['paired_vs'] == 'DAFormer† (R101)' and row['paired']['miou19']['n'] == 1


def test_figure_labels_do_not_overlap():
    """Figure 3 puts a label beside every class; clustered points must not print over each
    other (the paper's classes crowd at the same frequency and gain)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmseg_uda.experiments.analysis import place_labels
    fig, ax = plt.subplots(figsize=(8, 5))
    points = [(1e-3 * (1 + 0.02 * i), 0.1 * (i % 3)) for i in range(9)]  # one tight cluster
    points += [(0.2, 5.0), (0.3, -2.0)]
    ax.scatter(*zip(*points))
    ax.set_xscale('log')
    fig.tight_layout()
    labels = [f'class {i}' for i in range(len(points))]
    texts = place_labels(ax, points, labels)
    fig.canvas.draw()
    boxes = [t.get_window_extent(fig.canvas.get_renderer()) for t in texts]
    assert sorted(t.get_text() for t in texts) == sorted(labels)
    assert not [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    plt.close(fig)


def test_table1_gains_are_the_papers_arrows():
    """The analysis's paper gain per BLV row (BLV − baseline) reproduces Table 1's green
    arrows: +0.72, +0.35, +0.55, +0.47, +0.24, +0.43, +1.20 mIoU."""
    from mmseg_uda.experiments import EXPERIMENTS
    reports, _ = analyze([], [EXPERIMENTS[1]])
    gains = [round(r.paper_gain, 2) for r in reports[0].rows if r.row.spec.blv is not None]
    assert gains == [0.72, 0.35, 0.55, 0.47, 0.24, 0.43, 1.20]
    tails = [r.paper['tail'] for r in reports[0].rows if r.row.spec.blv is not None]
    assert tails[0] == 66.70 and tails[-1] == 70.63


def test_table2_gains_are_the_papers_arrows():
    """Table 2's arrows: +1.05, +1.26, +1.49, +0.99 mIoU and +2.14, +1.59, +1.75, +1.28 tail
    mIoU for BLV over self-training at 1/16, 1/8, 1/4, 1/2; Table 5's semi-supervised rows
    carry the paper's LA and BLV numbers."""
    from mmseg_uda.experiments import EXPERIMENTS
    reports, _ = analyze([], [EXPERIMENTS[2]])
    table2 = _report(reports, 2)
    blv_rows = [r for r in table2.rows if r.row.spec.blv is not None]
    assert [round(r.paper_gain, 2) for r in blv_rows] == [1.05, 1.26, 1.49, 0.99]
    baselines = {r.row.spec.dataset: r.paper['tail'] for r in table2.rows
                 if r.row.spec.blv is None}
    assert [round(r.paper['tail'] - baselines[r.row.spec.dataset], 2) for r in blv_rows] == [
        2.14, 1.59, 1.75, 1.28]
    table5 = _report(reports, '5-semi')
    assert [r.paper.get('miou19') for r in table5.rows] == [None, 69.3, 73.2]


def test_a_row_can_be_paired_against_another_row_than_its_ce_baseline(tmp_path):
    """Experiment 3's check: self-training is paired against labelled-only training (another
    method), its BLV row against self-training (the cross-entropy baseline)."""
    from mmseg_uda.experiments import EXPERIMENTS
    exp3 = EXPERIMENTS[3]
    [table] = exp3.tables
    rows = {r.label: r.spec for r in table.rows}
    offsets = {'labelled only': (0.0, 1.0, 2.0), 'self-training': (1.5, 2.0, 3.5),
               'self-training w/ BLV': (1.0, 2.0, 3.0), 'all labels (upper bound)': (9, 9, 9)}
    for label, offs in offsets.items():
        for seed, off in enumerate(offs):
            write_final_metrics(tmp_path / f'{label}_s{seed}', rows[label], seed,
                                index_iou(off), exp=3, iteration=672)
    [report], _ = analyze(load_results(tmp_path), [exp3])
    st, blv = _row(report, 'self-training'), _row(report, 'self-training w/ BLV')
    assert st.baseline_label == 'labelled only' and blv.baseline_label == 'self-training'
    assert st.paired['miou19'].values == pytest.approx({0: 1.5, 1: 1.0, 2: 1.5})
    assert blv.paired['miou19'].values == pytest.approx({0: -0.5, 1: 0.0, 2: -0.5})
    assert '| self-training | labelled only | mIoU19: +1.3 [' in render_markdown([report])


def test_pairing_against_a_row_the_table_lacks_is_an_error():
    import dataclasses

    from mmseg_uda.experiments import EXPERIMENTS
    exp3 = EXPERIMENTS[3]
    [table] = exp3.tables
    broken = dataclasses.replace(table, rows=tuple(
        dataclasses.replace(r, versus='labeled only') if r.versus else r for r in table.rows))
    with pytest.raises(ValueError, match="paired against 'labeled only', which is no row"):
        analyze([], [dataclasses.replace(exp3, tables=(broken,))])
