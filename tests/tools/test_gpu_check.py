"""tools/gpu_check.py in its reduced CPU mode: every step of the GPU self-test, on the CPU."""
from __future__ import annotations

import json

import pytest
from experiments_helpers import load_script


@pytest.mark.integration
def test_gpu_check_reduced_mode_passes_every_step(tmp_path):
    out = tmp_path / 'check'
    assert load_script('tools/gpu_check.py').main(['--out', str(out), '--cpu']) == 0
    report = json.loads((out / 'gpu_check.json').read_text())
    assert report['mode'] == 'reduced' and report['device'] == 'cpu' and report['ok']
    steps = {s['name']: s for s in report['steps']}
    assert len(steps) == 6 and all(s['ok'] for s in steps.values())
    rows = steps['one DACS iteration per model']['data']['rows']
    assert {(r['model'].split()[0], r['amp']) for r in rows} == {
        (m, a) for m in ('daformer_r101', 'daformer_mitb5', 'hrda_mitb5') for a in ('off', 'bf16')}
    assert all(r['s_per_iter_ce'] > 0 and r['s_per_iter_blv'] > 0 for r in rows)
    run = steps['40-iteration run: pre-empt, resume, test']['data']
    assert run['test_miou'] == run['train_miou']
    markdown = (out / 'gpu_check.md').read_text()
    assert 'reduced mode, device cpu' in markdown and 'all steps passed' in markdown
