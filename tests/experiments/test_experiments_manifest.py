"""The experiment-40 manifest: exactly the paper's runs, shared rows once, stable names."""
from __future__ import annotations

import pytest

from mmseg_uda.experiments import EXP40, EXPERIMENTS, get_experiment, plan


def _blv(sigma, variation='gaussian', balance=True, use_variation=True):
    return (('balance', balance), ('clip', 1.0), ('sigma', float(sigma)),
            ('use_variation', use_variation), ('variation', variation))


def _expected_exp40() -> dict[tuple, set]:
    """(dataset, method, backbone, blv) -> tables, written out from the paper's tables."""
    out: dict[tuple, set] = {}

    def add(key, table):
        out.setdefault(key, set()).add(table)

    for ds, main_table, best in (('gta2cs', 3, 6), ('syn2cs', 4, 4)):
        add((ds, 'source_only', 'r101', None), main_table)
        for method, backbone in (('daformer', 'r101'), ('daformer', 'mitb5'), ('hrda', 'mitb5')):
            add((ds, method, backbone, None), main_table)
            add((ds, method, backbone, _blv(best)), main_table)
        for table in (7, 8):
            add((ds, 'daformer', 'r101', None), table)
            add((ds, 'daformer', 'r101', _blv(best)), table)
        for sigma in (3, 4, 5, 6, 7):
            add((ds, 'daformer', 'r101', _blv(sigma)), 7)
        add((ds, 'daformer', 'r101', _blv(best, use_variation=False)), 8)
        add((ds, 'daformer', 'r101', _blv(best, balance=False)), 8)
    add(('gta2cs', 'daformer', 'r101', None), 6)
    add(('gta2cs', 'daformer', 'r101', _blv(6)), 6)
    for variation in ('uniform', 'beta', 'exponential'):
        add(('gta2cs', 'daformer', 'r101', _blv(6, variation)), 6)
    return out


def _key(run):
    meta = run.exp_meta()
    blv = None if meta['blv'] is None else tuple(sorted(meta['blv'].items()))
    return (meta['dataset'], meta['method'], meta['backbone'], blv)


def test_exp40_is_exactly_the_papers_runs():
    runs = plan(EXP40)
    expected = _expected_exp40()
    assert len(expected) == 29
    assert len(runs) == 87
    assert {(_key(r), r.seed) for r in runs} == {(k, s) for k in expected for s in (0, 1, 2)}
    for run in runs:
        assert set(run.tables) == expected[_key(run)], run.name
        assert run.tables == tuple(sorted(run.tables))


def test_no_duplicate_runs_or_names():
    runs = plan(EXP40)
    assert len({(r.spec, r.seed) for r in runs}) == len(runs)
    assert len({r.name for r in runs}) == len(runs)


def test_names_are_stable_and_readable():
    runs = {r.name for r in plan(EXP40, seeds=[1])}
    assert 'gta2cs_512x512_dacs_a999_fdthings_rcs001-05_cpl_dlv2red_r101v1c_poly10warm_s1' in runs
    assert ('gtaHR2csHR_1024x1024_dacs_a999_fdthings_rcs001-20_cpl2_hrda1-512-01_daformer_sepaspp'
            '_sl_mitb5_poly10warm_blv6_s1') in runs
    assert 'syn2cs_512x512_source-only_dlv2red_r101v1c_poly10warm_s1' in runs
    assert ('gta2cs_512x512_dacs_a999_fdthings_rcs001-05_cpl_dlv2red_r101v1c_poly10warm_'
            'blv6-novar_s1') in runs


@pytest.mark.integration
def test_names_and_order_are_the_same_in_another_process():
    """A re-run finds its work dirs by name: another interpreter, with another hash seed (set
    and dict iteration of strings), must plan the same names in the same order."""
    import json
    import os
    import subprocess
    import sys
    code = ('import json, mmseg_uda; from mmseg_uda.experiments import EXP40, plan; '
            'print(json.dumps([r.name for r in plan(EXP40)]))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         env={**os.environ, 'PYTHONHASHSEED': '12345'}, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [r.name for r in plan(EXP40)]


def test_seeds_are_the_outer_loop():
    seeds = [r.seed for r in plan(EXP40)]
    assert seeds == sorted(seeds)


def test_exp_meta_contract():
    for run in plan(EXP40, seeds=[2]):
        meta = run.exp_meta()
        assert set(meta) == {'exp', 'tables', 'dataset', 'method', 'backbone', 'blv', 'loss',
                             'seed'}
        assert meta['exp'] == 40 and meta['seed'] == 2
        assert meta['dataset'] in ('gta2cs', 'syn2cs')
        assert meta['method'] in ('source_only', 'daformer', 'hrda')
        assert meta['backbone'] in ('r101', 'mitb5')
        if meta['blv'] is not None:
            assert set(meta['blv']) == {'sigma', 'variation', 'clip', 'balance', 'use_variation'}
            assert meta['loss'] == dict(type='blv', **meta['blv'])
        else:
            assert meta['loss'] == {'type': 'ce'}


def test_experiment_41_is_table_5_and_shares_the_runs_of_experiment_40():
    from mmseg_uda.experiments import EXP41
    from mmseg_uda.experiments.specs import RunSpec
    runs = plan(EXP41)
    assert len(runs) == 9 and {r.seed for r in runs} == {0, 1, 2}
    kinds = {(r.exp_meta()['loss']['type'], r.exp_meta().get('sampling')) for r in runs}
    assert kinds == {('ce', 'rs'), ('rw', None), ('la', None)}
    names40 = {r.name for r in plan(EXP40)}
    assert not names40 & {r.name for r in runs}            # nothing of experiment 40 again
    rows = EXP41.tables[0].rows
    assert [EXP41.shared_spec_owner(row.spec) for row in rows] == [40, None, None, None, 40]
    assert rows[0].spec == RunSpec('gta2cs', 'daformer', 'r101')
    assert len(plan(EXP40)) == 87                           # experiment 40 stays the paper's
    for run in runs:
        assert RunSpec.from_meta(run.exp_meta()) == run.spec


def test_unknown_experiment_names_the_defined_ones():
    with pytest.raises(KeyError, match=str(sorted(EXPERIMENTS))):
        get_experiment(12345)
