"""Atomic checkpoint files, keep-last-K, and finding the latest loadable checkpoint."""
import os

import pytest
import torch

from mmseg_uda.runtime import (
    atomic_save,
    find_latest_checkpoint,
    list_checkpoints,
    prune_checkpoints,
)
from mmseg_uda.runtime import checkpoint as ckpt_io

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _save(path, value):
    atomic_save(dict(state_dict=dict(w=torch.full((3,), float(value)))), path)


def _value(path):
    return torch.load(path, weights_only=True)['state_dict']['w'][0].item()


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / 'iter_1.pth'
    _save(path, 1)

    def write_half_then_fail(obj, f):
        f.write(b'PK\x03\x04 partial archive')
        raise OSError('No space left on device')

    monkeypatch.setattr(ckpt_io.torch, 'save', write_half_then_fail)
    with pytest.raises(OSError, match='No space left'):
        _save(path, 2)
    assert _value(path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_1.pth']


def test_saved_file_is_complete_and_not_private(tmp_path):
    path = tmp_path / 'iter_7.pth'
    _save(path, 7)
    assert _value(path) == 7
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask  # mkstemp alone would give 0600


def test_latest_link_follows_the_newest_save(tmp_path):
    for i in (1, 2):
        _save(tmp_path / f'iter_{i}.pth', i)
        ckpt_io.update_latest_link(tmp_path / f'iter_{i}.pth')
    assert os.readlink(tmp_path / 'latest.pth') == 'iter_2.pth'
    assert _value(tmp_path / 'latest.pth') == 2


def test_prune_keeps_the_newest_k_despite_gaps(tmp_path):
    for i in (100, 200, 250, 400, 800):  # 250: a last-good-state save off the grid
        _save(tmp_path / f'iter_{i}.pth', i)
    deleted = prune_checkpoints(tmp_path, keep=2, current=tmp_path / 'iter_800.pth')
    assert sorted(p.name for p in deleted) == ['iter_100.pth', 'iter_200.pth', 'iter_250.pth']
    assert [i for i, _ in list_checkpoints(tmp_path)] == [400, 800]


def test_prune_never_deletes_the_checkpoint_just_written(tmp_path):
    # Resumed from iter_200 while an abandoned iter_800 is still there.
    for i in (200, 300, 800):
        _save(tmp_path / f'iter_{i}.pth', i)
    prune_checkpoints(tmp_path, keep=2, current=tmp_path / 'iter_300.pth')
    assert [i for i, _ in list_checkpoints(tmp_path)] == [300, 800]


@pytest.mark.parametrize('keep', [0, -1])
def test_prune_with_nonpositive_k_keeps_everything(tmp_path, keep):
    for i in (1, 2, 3):
        _save(tmp_path / f'iter_{i}.pth', i)
    assert prune_checkpoints(tmp_path, keep=keep) == []
    assert len(list_checkpoints(tmp_path)) == 3


def test_find_latest_ignores_temp_files_and_falls_back_from_a_truncated_one(tmp_path):
    assert find_latest_checkpoint(tmp_path / 'missing') is None
    for i in (4, 8):
        _save(tmp_path / f'iter_{i}.pth', i)
    (tmp_path / '.iter_16.pth.abc123.tmp').write_bytes(b'PK\x03\x04 killed mid-save')
    data = (tmp_path / 'iter_8.pth').read_bytes()
    (tmp_path / 'iter_12.pth').write_bytes(data[:len(data) // 2])  # e.g. a full disk
    with pytest.warns(UserWarning, match='iter_12.pth .*cannot be loaded'):
        latest = find_latest_checkpoint(tmp_path)
    assert latest == str(tmp_path / 'iter_8.pth')


def test_find_latest_orders_by_iteration_not_by_name(tmp_path):
    for i in (900, 1000, 20):
        _save(tmp_path / f'iter_{i}.pth', i)
    assert find_latest_checkpoint(tmp_path) == str(tmp_path / 'iter_1000.pth')


def test_stale_temp_files_are_removed(tmp_path):
    _save(tmp_path / 'iter_1.pth', 1)
    (tmp_path / '.iter_2.pth.x.tmp').write_bytes(b'partial')
    removed = ckpt_io.remove_stale_temp_files(tmp_path)
    assert [p.name for p in removed] == ['.iter_2.pth.x.tmp']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_1.pth']
