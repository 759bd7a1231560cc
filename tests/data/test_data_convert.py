"""The label converters: id maps, statistics files, re-runs, and every bad-input case."""
from __future__ import annotations

import json
import os
import os.path as osp
import re
import runpy

import numpy as np
import pytest
from data_helpers import (
    REPO,
    read_png,
    write_gray_png,
    write_palette_png,
    write_rgb_png,
    write_synthia_png,
)

from mmseg_uda.datasets.conversion import (
    ConversionError,
    Options,
    convert_cityscapes,
    convert_gta,
    convert_synthia,
)

# Written out from the Cityscapes label definitions (labels.py of cityscapesScripts) and the
# SYNTHIA RAND-CITYSCAPES README, not imported from the code under test.
CITYSCAPES_TRAIN_IDS = {
    7: 0,    # road
    8: 1,    # sidewalk
    11: 2,   # building
    12: 3,   # wall
    13: 4,   # fence
    17: 5,   # pole
    19: 6,   # traffic light
    20: 7,   # traffic sign
    21: 8,   # vegetation
    22: 9,   # terrain
    23: 10,  # sky
    24: 11,  # person
    25: 12,  # rider
    26: 13,  # car
    27: 14,  # truck
    28: 15,  # bus
    31: 16,  # train
    32: 17,  # motorcycle
    33: 18,  # bicycle
}
SYNTHIA_TRAIN_IDS = {
    3: 0,    # road
    4: 1,    # sidewalk
    2: 2,    # building
    21: 3,   # wall
    5: 4,    # fence
    7: 5,    # pole
    15: 6,   # traffic light
    9: 7,    # traffic sign
    6: 8,    # vegetation
    16: 9,   # terrain
    1: 10,   # sky
    10: 11,  # pedestrian -> person
    17: 12,  # rider
    8: 13,   # car
    18: 14,  # truck
    19: 15,  # bus
    20: 16,  # train
    12: 17,  # motorcycle
    11: 18,  # bicycle
}
STATS_FILES = ('sample_class_stats.json', 'sample_class_stats_dict.json',
               'samples_with_class.json')


def all_ids_label(n_ids: int, width: int = 5) -> np.ndarray:
    """Row i holds id i."""
    return np.repeat(np.arange(n_ids), width).reshape(n_ids, width)


def make_gta(root: str, labels: list[np.ndarray]) -> None:
    for i, ids in enumerate(labels):
        write_rgb_png(osp.join(root, 'images', f'{i + 1:05d}.png'), *ids.shape, seed=i)
        write_palette_png(osp.join(root, 'labels', f'{i + 1:05d}.png'), ids)


def make_synthia(root: str, labels: list[np.ndarray]) -> None:
    for i, ids in enumerate(labels):
        write_rgb_png(osp.join(root, 'RGB', f'{i:07d}.png'), *ids.shape, seed=i)
        inst = np.random.default_rng(i).integers(0, 500, ids.shape)
        write_synthia_png(osp.join(root, 'GT', 'LABELS', f'{i:07d}.png'), ids, inst)


def cs_paths(root: str, split: str, i: int) -> tuple[str, str]:
    stem = f'aachen_{i:06d}_000019'
    return (osp.join(root, 'leftImg8bit', split, 'aachen', f'{stem}_leftImg8bit.png'),
            osp.join(root, 'gtFine', split, 'aachen', f'{stem}_gtFine_labelIds.png'))


def make_cityscapes(root: str, train: list[np.ndarray], val: list[np.ndarray]) -> None:
    for split, labels in (('train', train), ('val', val)):
        for i, ids in enumerate(labels):
            img, lab = cs_paths(root, split, i)
            write_rgb_png(img, *ids.shape, seed=i)
            write_gray_png(lab, ids)


def expected_train_ids(ids: np.ndarray, table: dict[int, int]) -> np.ndarray:
    out = np.full(ids.shape, 255, np.uint8)
    for raw, train in table.items():
        out[ids == raw] = train
    return out


def load_stats(root: str):
    return [json.load(open(osp.join(root, f))) for f in STATS_FILES]


# --- id maps -----------------------------------------------------------------------------------

def test_gta_map_matches_cityscapes_table(tmp_path):
    root = str(tmp_path / 'gta')
    ids = all_ids_label(34)
    make_gta(root, [ids])
    convert_gta(root)
    out = read_png(osp.join(root, 'labels', '00001_labelTrainIds.png'))
    np.testing.assert_array_equal(out, expected_train_ids(ids, CITYSCAPES_TRAIN_IDS))


def test_synthia_map_reads_first_channel_and_keeps_19_class_space(tmp_path):
    root = str(tmp_path / 'synthia')
    ids = all_ids_label(23)
    make_synthia(root, [ids])
    convert_synthia(root)
    out = read_png(osp.join(root, 'GT', 'LABELS', '0000000_labelTrainIds.png'))
    np.testing.assert_array_equal(out, expected_train_ids(ids, SYNTHIA_TRAIN_IDS))


def test_cityscapes_map_matches_table_and_converts_val(tmp_path):
    root = str(tmp_path / 'cityscapes')
    ids = all_ids_label(34)
    make_cityscapes(root, [ids], [ids[::-1]])
    convert_cityscapes(root)
    for split, raw in (('train', ids), ('val', ids[::-1])):
        out = read_png(cs_paths(root, split, 0)[1].replace('_labelIds', '_labelTrainIds'))
        np.testing.assert_array_equal(out, expected_train_ids(raw, CITYSCAPES_TRAIN_IDS))


# --- statistics ----------------------------------------------------------------------------------

def test_stats_files_count_train_ids_per_image(tmp_path):
    root = str(tmp_path / 'gta')
    rng = np.random.default_rng(0)
    labels = [rng.choice([7, 8, 26, 33, 0], size=(20, 30), p=[.5, .2, .2, .05, .05])
              for _ in range(3)]
    make_gta(root, labels)
    convert_gta(root)
    stats, stats_dict, with_class = load_stats(root)
    assert len(stats) == 3
    for i, (s, ids) in enumerate(zip(stats, labels)):
        file = osp.join(root, 'labels', f'{i + 1:05d}_labelTrainIds.png')
        assert s['file'] == file
        expected = {str(CITYSCAPES_TRAIN_IDS[r]): int((ids == r).sum())
                    for r in (7, 8, 26, 33) if (ids == r).any()}
        assert {k: v for k, v in s.items() if k != 'file'} == expected
        assert stats_dict[file] == expected
        for c, n in expected.items():
            assert [file, n] in with_class[c]
    assert '255' not in with_class and set(with_class) <= {'0', '1', '13', '18'}


def test_cityscapes_stats_cover_train_split_only(tmp_path):
    root = str(tmp_path / 'cityscapes')
    make_cityscapes(root, [np.full((4, 4), 7)], [np.full((4, 4), 26)] * 2)
    convert_cityscapes(root)
    stats, _, with_class = load_stats(root)
    assert [s['0'] for s in stats] == [16] and list(with_class) == ['0']
    assert '/train/' in stats[0]['file']


# --- re-runs -------------------------------------------------------------------------------------

def test_second_run_skips_finished_files_unless_overwrite(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root, [np.full((6, 8), 7), np.full((6, 8), 26)])
    convert_gta(root)
    done = osp.join(root, 'labels', '00001_labelTrainIds.png')
    write_gray_png(done, np.full((6, 8), 1))           # pretend an older result
    convert_gta(root)
    assert (read_png(done) == 1).all()
    assert load_stats(root)[0][0] == {'1': 48, 'file': done}   # stats come from the file kept
    convert_gta(root, Options(overwrite=True))
    assert (read_png(done) == 0).all()
    assert load_stats(root)[0][0] == {'0': 48, 'file': done}


def test_parallel_conversion_gives_same_result(tmp_path):
    labels = [np.random.default_rng(i).choice([7, 11, 24], (10, 12)) for i in range(4)]
    results = []
    for nproc in (1, 2):
        root = str(tmp_path / f'gta{nproc}')
        make_gta(root, labels)
        stats = convert_gta(root, nproc=nproc)
        results.append([{k: v for k, v in s.items() if k != 'file'} for s in stats])
    assert results[0] == results[1]


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize('convert, missing', [
    (convert_gta, 'labels'), (convert_synthia, 'RGB'), (convert_cityscapes, 'gtFine')])
def test_missing_folder_is_named(tmp_path, convert, missing):
    root = str(tmp_path / 'data')
    make_gta(root, [np.full((2, 2), 7)])
    make_synthia(root, [np.full((2, 2), 3)])
    make_cityscapes(root, [np.full((2, 2), 7)], [np.full((2, 2), 7)])
    for sub in ('labels', 'RGB', 'gtFine'):
        if sub == missing:
            os.rename(osp.join(root, sub), osp.join(root, sub + '_moved'))
    with pytest.raises(ConversionError, match=osp.join(root, missing)):
        convert(root)
    assert not any(osp.exists(osp.join(root, f)) for f in STATS_FILES)


def test_image_label_count_mismatch_names_the_files(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root, [np.full((2, 2), 7)] * 2)
    write_rgb_png(osp.join(root, 'images', '00003.png'), 2, 2)
    with pytest.raises(ConversionError, match=r'3 images .* but 2 labels.*00003\.png'):
        convert_gta(root)


def test_cityscapes_label_without_image(tmp_path):
    root = str(tmp_path / 'cityscapes')
    make_cityscapes(root, [np.full((2, 2), 7)] * 2, [np.full((2, 2), 7)])
    os.remove(cs_paths(root, 'train', 1)[0])
    with pytest.raises(ConversionError, match=r'labels without image.*aachen_000001_000019'):
        convert_cityscapes(root)


def _cut(path: str) -> None:
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])


@pytest.mark.parametrize('convert, make, label', [
    (convert_gta, make_gta, 'labels/00002.png'),
    (convert_synthia, make_synthia, 'GT/LABELS/0000001.png')])
@pytest.mark.parametrize('damage', ['truncated', 'garbage'])
def test_unreadable_png_is_named_and_nothing_is_lost(tmp_path, convert, make, label, damage):
    root = str(tmp_path / 'data')
    good = 7 if convert is convert_gta else 3
    make(root, [np.full((30, 40), good)] * 3)
    convert(root)
    before = {f: open(osp.join(root, f), 'rb').read() for f in STATS_FILES}
    path = osp.join(root, label)
    if damage == 'truncated':
        _cut(path)
    else:
        open(path, 'wb').write(b'not a png at all')
    with pytest.raises(ConversionError, match=path):
        convert(root, Options(overwrite=True))
    assert {f: open(osp.join(root, f), 'rb').read() for f in STATS_FILES} == before
    written = [f for f in os.listdir(osp.dirname(path)) if f.endswith('_labelTrainIds.png')]
    assert len(written) == 3                          # the earlier output is still there
    for f in written:
        assert (read_png(osp.join(osp.dirname(path), f)) == 0).all()
    assert not [f for f in os.listdir(osp.dirname(path)) if f.startswith('.tmp_')]


@pytest.mark.parametrize('convert, make, known, unknown', [
    (convert_gta, make_gta, 7, 34), (convert_synthia, make_synthia, 3, 23),
    (convert_cityscapes, None, 7, 40)])
def test_unknown_id_fails_unless_mapped_to_ignore(tmp_path, convert, make, known, unknown):
    root = str(tmp_path / 'data')
    ids = np.full((4, 4), known)
    ids[0, :2] = unknown
    if make is None:
        make_cityscapes(root, [ids], [np.full((4, 4), known)])
    else:
        make(root, [ids])
    with pytest.raises(ConversionError, match=rf'\[{unknown}\].*--unknown-to-ignore'):
        convert(root)
    stats = convert(root, Options(unknown_to_ignore=True))
    out = read_png(stats[0]['file'])
    assert (out[0, :2] == 255).all() and (out[0, 2:] == 0).all() and stats[0]['0'] == 14


# --- command line ------------------------------------------------------------------------------

def _run_script(name: str, argv: list[str], monkeypatch) -> int:
    """Run tools/convert_datasets/<name>.py as a script; return its exit status."""
    script = osp.join(REPO, 'tools', 'convert_datasets', f'{name}.py')
    monkeypatch.setattr('sys.argv', [script] + argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(script, run_name='__main__')
    return exit_info.value.code


def test_cli_shows_progress_and_reports_errors(tmp_path, capfd, monkeypatch):
    root = str(tmp_path / 'gta')
    make_gta(root, [np.full((3, 3), 7)] * 2)
    assert _run_script('gta', [root, '--nproc', '1'], monkeypatch) == 0
    out = capfd.readouterr().out
    assert '2/2' in out and 'task/s' in out            # mmcv's progress bar
    assert _run_script('gta', [str(tmp_path / 'nowhere')], monkeypatch) == 1
    assert 'error: folder' in capfd.readouterr().err


# --- reliability probes: interrupted runs, broken images, wrong label kinds ------------------

KILL_ON_THIRD_WRITE = r'''
import os, signal, sys
from mmseg_uda.datasets import conversion
real = conversion.atomic_write
calls = []
def dying_write(path, write):
    calls.append(path)
    if len(calls) == 3:  # killed in the middle of the third label's write
        def half(f):
            f.write(b'\x89PNG partial')
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, half)
    return real(path, write)
conversion.atomic_write = dying_write
sys.exit(conversion.main(sys.argv[1], 'probe', sys.argv[2:]))
'''


@pytest.mark.parametrize('dataset, make, label_dir', [
    ('gta', make_gta, 'labels'), ('synthia', make_synthia, 'GT/LABELS')])
@pytest.mark.integration
def test_a_killed_conversion_reruns_cleanly(tmp_path, dataset, make, label_dir):
    """Probe 1: SIGKILL during a conversion left a temporary file that the re-run mistook for
    a label without image ('Re-extract the data set')."""
    import signal
    import subprocess
    import sys
    root = str(tmp_path / dataset)
    make(root, [np.full((6, 8), 7 if dataset == 'gta' else 3)] * 5)
    killed = subprocess.run([sys.executable, '-c', KILL_ON_THIRD_WRITE, dataset, root],
                            cwd=REPO, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    leftovers = [f for f in os.listdir(osp.join(root, label_dir)) if f.startswith('.')]
    assert leftovers  # what a kill leaves behind
    old_style = osp.join(root, label_dir, '.tmp_abc123.png')  # the name versions < 2026-12 used
    open(old_style, 'wb').close()
    rerun = subprocess.run([sys.executable, f'tools/convert_datasets/{dataset}.py', root],
                           cwd=REPO, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert 'removed' in rerun.stdout and 'temporary file(s) of an interrupted conversion' in \
        rerun.stdout
    assert not [f for f in os.listdir(osp.join(root, label_dir)) if f.startswith('.')]
    assert len(load_stats(root)[0]) == 5
    unknown = subprocess.run([sys.executable, f'tools/convert_datasets/{dataset}.py', root,
                              '--unknown-to-ignore', '--overwrite'], cwd=REPO,
                             capture_output=True, text=True)
    assert unknown.returncode == 0, unknown.stderr[-2000:]


@pytest.mark.parametrize('convert, make, image', [
    (convert_gta, make_gta, 'images/00002.png'),
    (convert_synthia, make_synthia, 'RGB/0000001.png'),
    (convert_cityscapes, None, 'leftImg8bit/train/aachen/aachen_000001_000019_leftImg8bit.png')])
@pytest.mark.parametrize('damage', ['truncated', 'empty', 'other size'])
def test_broken_or_mismatched_images_are_named(tmp_path, convert, make, image, damage):
    """Probe 2: a truncated or empty image was 'converted' with exit 0; images were never read."""
    root = str(tmp_path / 'data')
    labels = [np.full((30, 40), 7)] * 3
    if make is None:
        make_cityscapes(root, labels, labels[:1])
    else:
        make(root, [np.full((30, 40), 7 if convert is convert_gta else 3)] * 3)
    path = osp.join(root, image)
    if damage == 'truncated':
        _cut(path)
    elif damage == 'empty':
        open(path, 'wb').close()
    else:
        write_rgb_png(path, 31, 40)
    expected = 'image is 40x31 but its label' if damage == 'other size' else \
        'unreadable or truncated image'
    with pytest.raises(ConversionError, match=rf'{path}: {expected}'):
        convert(root)


def test_an_8bit_colour_label_where_synthia_ids_are_expected_gets_its_own_message(tmp_path):
    root = str(tmp_path / 'synthia')
    make_synthia(root, [np.full((6, 8), 3)])
    label = osp.join(root, 'GT', 'LABELS', '0000000.png')
    write_rgb_png(label, 6, 8)  # a GT/COLOR-style visualisation
    with pytest.raises(ConversionError, match=r'8-bit colour PNG.*16-bit.*GT/LABELS'):
        convert_synthia(root)


@pytest.mark.integration
def test_a_failing_parallel_conversion_exits_with_only_its_message(tmp_path):
    """Partial probe: the Cityscapes converter ended an error with a stray 'OSError: [Errno 9]
    Bad file descriptor' (its pool was left to the interpreter's exit)."""
    import subprocess
    import sys
    root = str(tmp_path / 'cityscapes')
    make_cityscapes(root, [np.full((8, 8), 7)] * 40, [np.full((8, 8), 7)])
    _cut(cs_paths(root, 'train', 5)[1])
    out = subprocess.run([sys.executable, 'tools/convert_datasets/cityscapes.py', root,
                          '--nproc', '2'], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 1
    # torch's C++ warnings open with a glog prefix, W<month><day> (W1201 on 1 December).
    errors = [ln for ln in out.stderr.splitlines()
              if ln.strip() and 'Warning' not in ln and 'warnings.warn' not in ln
              and not re.match(r'W\d{4} ', ln)]
    assert len(errors) == 1 and errors[0].startswith('error: ') and 'truncated' in errors[0], \
        out.stderr
