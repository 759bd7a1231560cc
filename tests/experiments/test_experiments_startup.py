"""`run_experiments.py --startup-test` on synthetic data: real tools/train.py runs, 2 iterations."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from experiments_helpers import TINY_SCALE, load_script


def startup_test(tmp_path: Path, data_root: str, *args: str) -> tuple[int, str, Path]:
    work = tmp_path / 'work'
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = load_script('run_experiments.py').main(
            ['--startup-test', '--data-root', data_root, '--data-scale', str(TINY_SCALE),
             '--work-root', str(work), '--config-dir', str(tmp_path / 'configs'), *args])
    return code, buf.getvalue(), work


def _trained_iterations(work_dir: Path) -> list[int]:
    [log] = work_dir.glob('*.log.json')
    records = [json.loads(line) for line in log.read_text().splitlines()[1:]]
    return [r['iter'] for r in records if r.get('mode') == 'train']


def _check(code: int, printed: str, work: Path, n_runs: int) -> None:
    assert code == 0, printed
    assert f'sweep: {n_runs} run, 0 skipped, 0 failed' in printed
    work_dirs = sorted(p for p in work.iterdir() if p.is_dir())
    assert len(work_dirs) == n_runs
    for work_dir in work_dirs:
        assert _trained_iterations(work_dir)[-1] == 2, work_dir.name
        assert not list(work_dir.glob('*.pth')), 'the startup test saves no checkpoint'
        assert json.loads(next(work_dir.glob('*_s0.json')).read_text())['exp_meta']['seed'] == 0


def test_exp0_startup_uda_with_blv(tmp_path, tiny_data):
    """The demo's DACS + BLV config, the code path with the most parts (cheap default test),
    and the warm start it starts from, which comes whatever --filter selects."""
    code, printed, work = startup_test(tmp_path, tiny_data, '--exp', '0', '--filter', 'blv')
    _check(code, printed, work, 2)
    assert '[1/2] warmstart_gta2cs_' in printed


@pytest.mark.slow
def test_exp0_startup(tmp_path, tiny_data):
    code, printed, work = startup_test(tmp_path, tiny_data, '--exp', '0', '--seeds', '1,2')
    _check(code, printed, work, 5)  # the warm start and seed 0's 4 rows, whatever --seeds says


@pytest.mark.slow
def test_exp40_startup_one_config_per_model(tmp_path, tiny_data):
    """Full-size DAFormer-R101, DAFormer-MiT-B5 and HRDA (with BLV) and source-only R101, at the
    paper's crops, 2 iterations each on CPU. The whole experiment is the same command without
    --filter (29 configs; hours on a 2-core CPU)."""
    code, printed, work = startup_test(
        tmp_path, tiny_data, '--exp', '40', '--device', 'cpu', '--filter',
        r'gta.*(source-only.*|_blv6)_s0$')
    _check(code, printed, work, 4)


@pytest.mark.slow
def test_exp41_startup(tmp_path, tiny_data):
    """Table 5's new rows at full size (DAFormer-R101 with RS, RW, LA), 2 iterations each: the
    CE and BLV rows are experiment 40's and are not run again."""
    code, printed, work = startup_test(tmp_path, tiny_data, '--exp', '41', '--device', 'cpu')
    _check(code, printed, work, 3)


def test_exp1_startup_the_smallest_zoo_model_with_blv(tmp_path, tiny_data):
    """Table 1's MiT-b0 + SegformerHead with BLV, from mmseg's zoo config, on the synthetic
    Cityscapes alone at the paper's 512x1024 crops: a plain segmentor through tools/train.py."""
    code, printed, work = startup_test(tmp_path, tiny_data, '--exp', '1', '--device', 'cpu',
                                       '--filter', r'segformer.*_blv4_s0$')
    _check(code, printed, work, 1)


@pytest.mark.slow
def test_exp1_startup_every_architecture(tmp_path, tiny_data):
    """The 14 configs of Table 1 (7 architectures of mmseg's zoo, with and without BLV)."""
    code, printed, work = startup_test(tmp_path, tiny_data, '--exp', '1', '--device', 'cpu')
    _check(code, printed, work, 14)


def _cityscapes_copy(tiny_data: str, tmp_path: Path, *also: str) -> str:
    """The semi-supervised runs write their partition into the data root: a copy of it (and
    of the ``also`` domains)."""
    from data_helpers import copy_domain
    root = tmp_path / 'data'
    for domain in ('cityscapes', *also):
        copy_domain(tiny_data, domain, str(root))
    return str(root)


def test_exp3_startup_self_training_with_blv_writes_its_partition(tmp_path, tiny_data):
    """Experiment 3's self-training + BLV: the partition is drawn and written before training
    (with its labelled images' statistics, BLV's counts), then SelfTraining trains on the
    labelled/unlabelled pairs through tools/train.py. Experiment 0's warm start, on the GTA-like
    source, comes first."""
    root = _cityscapes_copy(tiny_data, tmp_path, 'gta')
    code, printed, work = startup_test(tmp_path, root, '--exp', '3', '--filter', 'blv4_s0$')
    _check(code, printed, work, 2)
    assert '[1/2] warmstart_gta2cs_' in printed
    folder = Path(root) / 'cityscapes' / 'splits' / '1-8_seed0'
    assert sorted(p.name for p in folder.iterdir()) == [
        'labelled.txt', 'sample_class_stats.json', 'unlabelled.txt']
    [work_dir] = [p for p in work.iterdir() if p.is_dir() and p.name.startswith('cs1-8_')]
    log = next(work_dir.glob('*.log')).read_text()
    assert 'unlabelled.decode.loss_blv' in log and 'src.decode.loss_blv' in log


@pytest.mark.slow
def test_exp2_startup_one_config_per_architecture(tmp_path, tiny_data):
    """Table 2's ResNet-101 + DeepLabV3+ with BLV and Eq. 4, and Table 5's ResNet-50 + PSPNet
    with LA, at the paper's 769x769 crops (about 3 minutes per iteration on 2 CPU cores)."""
    root = _cityscapes_copy(tiny_data, tmp_path)
    code, printed, work = startup_test(tmp_path, root, '--exp', '2', '--device', 'cpu',
                                       '--filter', r'(cs1-16.*deeplabv3plus.*blv4|pspnet.*_la)'
                                                   r'_s0$')
    _check(code, printed, work, 2)
