"""Exact resume with ResumableIterBasedRunner on a tiny self-stepping model (CPU).

Interrupted between iterations or killed in the middle of a checkpoint save, a resumed run
ends with weights, optimizer state and generator states bit-identical to an uninterrupted run.
(tests/runtime/test_runtime_dacs.py does the same through tools/train.py with DACS.)
"""
import signal
import textwrap

import pytest
from runtime_helpers import (
    Interrupted,
    assert_nested_equal,
    assert_same_state,
    load,
    make_runner,
    run_killed_during_save,
    train,
)

from mmseg_uda.runtime import find_latest_checkpoint, list_checkpoints

pytestmark = pytest.mark.usefixtures('one_torch_thread')


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('uninterrupted')
    runner, loader = make_runner(work_dir, 6)
    train(runner, loader)
    return runner, work_dir


@pytest.mark.parametrize('workers', [0, 2])
def test_interrupted_between_iterations(tmp_path, uninterrupted, workers):
    reference, reference_dir = uninterrupted
    runner, loader = make_runner(tmp_path, 6, interrupt_after=4, workers=workers)
    with pytest.raises(Interrupted):
        train(runner, loader)
    resumed, loader = make_runner(tmp_path, 6, workers=workers)
    train(resumed, loader, resume_from=find_latest_checkpoint(tmp_path))
    assert resumed.iter == 6
    assert_same_state(reference.module, resumed.module)
    assert resumed.module.losses_seen == reference.module.losses_seen[4:]
    final, reference_final = load(tmp_path / 'iter_6.pth'), load(reference_dir / 'iter_6.pth')
    for key in ('state_dict', 'optimizer', 'training_state'):
        assert_nested_equal(final[key], reference_final[key], key)


def test_iteration_counter_is_not_off_by_one(tmp_path):
    # mmcv stores iter_k.pth with meta.iter = k-1 and repeats an iteration on resume.
    runner, loader = make_runner(tmp_path, 3)
    train(runner, loader)
    ckpt = load(tmp_path / 'iter_3.pth')
    assert ckpt['meta']['iter'] == ckpt['training_state']['iter'] == 3
    assert ckpt['training_state']['model']['local_iter'] == 3


def test_keep_last_k(tmp_path):
    runner, loader = make_runner(tmp_path, 7, max_keep_ckpts=3, interval=2)
    train(runner, loader)
    assert [i for i, _ in list_checkpoints(tmp_path)] == [4, 6, 7]  # 7: save_last


@pytest.mark.integration
def test_killed_during_a_checkpoint_save(tmp_path, uninterrupted):
    reference, _ = uninterrupted
    proc = run_killed_during_save(4, textwrap.dedent(f"""
        import mmseg_uda
        from runtime_helpers import make_runner, train
        train(*make_runner({str(tmp_path)!r}, 6))"""))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n for n in names if n.endswith('.tmp')], names  # the half-written save
    assert 'iter_4.pth' not in names
    latest = find_latest_checkpoint(tmp_path)
    assert latest == str(tmp_path / 'iter_3.pth')

    resumed, loader = make_runner(tmp_path, 6)
    train(resumed, loader, resume_from=latest)
    assert_same_state(reference.module, resumed.module)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]  # cleaned on start
