"""The synthetic generator: real on-disk layouts and encodings, labels that survive conversion,
shared layout statistics across domains, and a long tail."""
from __future__ import annotations

import dataclasses
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from data_helpers import TINY, read_png

from mmseg_uda.datasets.synthetic import GENERATOR_VERSION, SCALES, VERSION_FILE, render_sample
from mmseg_uda.datasets.synthetic.io import code_to_trainid
from mmseg_uda.datasets.synthetic.render import render
from mmseg_uda.datasets.synthetic.scene import EGO, sample_scene
from mmseg_uda.datasets.synthetic.style import STYLES

HEAD = (0, 2, 8, 10)                  # road, building, vegetation, sky
TAIL = (6, 12, 16, 17, 18)            # light, rider, train, motorcycle, bicycle


def _files(root: str) -> list[str]:
    return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_layouts_and_raw_encodings_match_the_real_sets(tiny_data):
    gta = _files(osp.join(tiny_data, 'gta'))
    assert 'images/00001.png' in gta and 'labels/00016.png' in gta
    with_ids = read_png(osp.join(tiny_data, 'gta', 'labels', '00001.png'))
    from PIL import Image
    with Image.open(osp.join(tiny_data, 'gta', 'labels', '00001.png')) as lab:
        assert lab.mode == 'P' and lab.size == TINY.gta_size
    assert set(np.unique(with_ids)) <= set(range(34)) and 7 in with_ids   # Cityscapes ids

    syn = _files(osp.join(tiny_data, 'synthia'))
    assert 'RGB/0000000.png' in syn and 'GT/LABELS/0000015.png' in syn
    raw = cv2.imread(osp.join(tiny_data, 'synthia', 'GT', 'LABELS', '0000000.png'),
                     cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (76, 128, 3)
    assert set(np.unique(raw[:, :, 2])) <= set(range(23)) and 3 in raw[:, :, 2]  # 3 = road

    cs = _files(osp.join(tiny_data, 'cityscapes'))
    assert 'leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png' in cs
    assert 'gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png' in cs
    assert {p.split('/')[2] for p in cs if p.startswith('leftImg8bit/val/')} <= {
        'frankfurt', 'lindau', 'munster'}
    lab = read_png(osp.join(tiny_data, 'cityscapes', 'gtFine', 'train', 'aachen',
                            'aachen_000000_000019_gtFine_labelIds.png'))
    assert lab.dtype == np.uint8 and lab.shape == (64, 128) and 1 in lab   # 1 = ego vehicle


def test_converted_labels_are_the_generated_labels(tiny_data):
    cases = [('gta', 'train', 3, TINY.gta_size, 'gta/labels/00004_labelTrainIds.png'),
             ('synthia', 'train', 5, TINY.synthia_size,
              'synthia/GT/LABELS/0000005_labelTrainIds.png'),
             ('cityscapes', 'val', 2, TINY.cityscapes_size,
              'cityscapes/gtFine/val/lindau/lindau_000002_000019_gtFine_labelTrainIds.png')]
    for domain, split, i, size, path in cases:
        _, code, _ = render_sample(domain, split, i, size, seed=0)
        np.testing.assert_array_equal(read_png(osp.join(tiny_data, path)),
                                      code_to_trainid(code, domain))


def test_generation_is_deterministic_per_seed():
    a = render_sample('gta', 'train', 7, (96, 54), seed=3)
    b = render_sample('gta', 'train', 7, (96, 54), seed=3)
    c = render_sample('gta', 'train', 7, (96, 54), seed=4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def test_domains_share_layout_but_not_appearance():
    """One layout rendered in each style: same labels (up to the Cityscapes bonnet and the
    classes SYNTHIA lacks), different pixels."""
    w, h = 160, 90
    differences = []
    for i in range(4):
        scene = sample_scene(np.random.default_rng(i), w, h)
        out = {name: render(scene, style, w, h) for name, style in STYLES.items()}
        gta_ids = code_to_trainid(out['gta'][1])
        cs_ids = code_to_trainid(out['cityscapes'][1])
        visible = out['cityscapes'][1] != EGO
        np.testing.assert_array_equal(gta_ids[visible], cs_ids[visible])
        syn_ids = code_to_trainid(out['synthia'][1], 'synthia')
        assert not np.isin(syn_ids, STYLES['synthia'].absent).any()
        keep = ~np.isin(gta_ids, (9, 14, 16))
        assert (syn_ids[keep] == gta_ids[keep]).mean() > 0.97
        imgs = [out[n][0].astype(np.float32) for n in ('gta', 'synthia', 'cityscapes')]
        differences += [np.abs(imgs[0] - imgs[2]).mean(), np.abs(imgs[1] - imgs[2]).mean()]
    assert min(differences) > 10   # grey levels out of 255, averaged over the image


def test_class_frequencies_follow_a_long_tail():
    size = SCALES['small'].gta_size
    hist = np.zeros(256)
    for i in range(40):
        hist += np.bincount(code_to_trainid(render_sample('gta', 'train', i, size, 0)[1]).ravel(),
                            minlength=256)
    share = hist[:19] / hist[:19].sum()
    assert set(np.argsort(share)[::-1][:5]) >= set(HEAD)   # the head leads
    assert all(share[c] > 0.05 for c in HEAD)
    assert all(share[c] < 0.005 for c in TAIL)
    assert share[13] > 10 * share[17]                        # cars outnumber motorcycles


def _load_tool():
    import importlib.util

    from data_helpers import REPO
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_data', osp.join(REPO, 'tools', 'make_synthetic_data.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_tool_writes_all_domains_and_prints_the_frequency_table(tmp_path, capfd, monkeypatch):
    tool = _load_tool()
    monkeypatch.setitem(SCALES, 'tiny', TINY)
    assert tool.main([str(tmp_path), '--scale', 'tiny', '--seed', '1', '--nproc', '1']) == 0
    out = capfd.readouterr().out
    assert f'{len(TINY.tasks())} images written' in out
    assert '| class | cityscapes train | cityscapes val | gta train | synthia train |' in out
    terrain = next(line for line in out.splitlines() if line.startswith('| terrain |'))
    assert terrain.split('|')[-2].strip() == '0.000'          # SYNTHIA-like has none
    assert len(os.listdir(tmp_path / 'gta' / 'images')) == TINY.n_gta
    assert (tmp_path / VERSION_FILE).read_text() == f'{GENERATOR_VERSION}\n'   # demo.sh reads it
    assert len(os.listdir(tmp_path / 'synthia' / 'RGB')) == TINY.n_synthia


def test_the_semi_set_is_the_small_sets_first_pictures_and_its_val(tmp_path, capfd,
                                                                   monkeypatch):
    """Experiment 3's 'semi' set: Cityscapes-like only, its training images the 'small' set's
    first ones and its val set the 'small' set's (the same seeds at the same sizes), so that its
    warm start's target and the demo's are one val set. The tool runs on a cut-down copy."""
    semi, small = SCALES['semi'], SCALES['small']
    assert (semi.n_gta, semi.n_synthia) == (0, 0)
    assert semi.n_cityscapes_val == small.n_cityscapes_val
    assert semi.n_cityscapes_train < small.n_cityscapes_train
    keep = {(d, s, i, size) for d, s, i, _, size in small.tasks()}
    assert all((d, s, i, size) in keep for d, s, i, _, size in semi.tasks())
    tool = _load_tool()
    monkeypatch.setitem(SCALES, 'semi', dataclasses.replace(
        TINY, n_gta=0, n_synthia=0, n_cityscapes_train=3, n_cityscapes_val=2))
    assert tool.main([str(tmp_path), '--scale', 'semi', '--nproc', '1']) == 0
    out = capfd.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ['GENERATOR_VERSION', 'cityscapes']
    assert 'Next: python tools/convert_datasets/cityscapes.py' in out


def test_preview_shows_every_domain(tmp_path):
    tool = _load_tool()
    path = str(tmp_path / 'preview.png')
    tool.write_preview(path, seed=0, scale='small', n=1)
    grid = cv2.imread(path)
    assert grid.shape[1] == 2 * tool.PREVIEW_TILE_WIDTH     # image | labels
    assert grid.shape[0] > 3 * 64                            # three domain rows


def test_tail_liveries_are_no_car_paint():
    """A tail object's colour is farther from every car paint of its style than two per-image
    jittered draws of one colour typically are (sqrt(6) x the jitter: sqrt(2) for the
    difference, sqrt(3) for the three channels)."""
    for style in STYLES.values():
        paints = np.asarray(style.paints, np.float64)
        assert set(style.liveries) == {'truck', 'bus', 'train', 'motorcycle', 'bicycle', 'rider',
                                       'sign'}
        for kind, colours in style.liveries.items():
            for rgb in colours:
                nearest = np.sqrt(((paints - rgb) ** 2).sum(1)).min()
                assert nearest > np.sqrt(6) * style.color_jitter, (style.name, kind, rgb)


def test_tail_objects_are_drawn_large_enough_to_learn():
    """At the small scale's 256-pixel width the magnified sign plates and light boxes are no
    longer specks (render.MAGNIFY): median 20 and 21 pixels over these 120 images, against 14 and
    24 in generator v2 and 8.5 and 14.5 in v1, when a sign was half a 4x4 cell of the model's
    finest features. Bicycles are solid wheels and thick tubes, not one-pixel outlines: they
    fill 64 % of their bounding box, against 14 % in v2."""
    size = SCALES['small'].gta_size
    areas = {7: [], 6: []}
    bicycle_fill = []
    for i in range(120):
        ids = code_to_trainid(render_sample('gta', 'train', i, size, 0)[1])
        for cls, found in areas.items():
            n, _, stats, _ = cv2.connectedComponentsWithStats((ids == cls).astype(np.uint8))
            found += list(stats[1:, cv2.CC_STAT_AREA])
        n, _, stats, _ = cv2.connectedComponentsWithStats((ids == 18).astype(np.uint8))
        bicycle_fill += [a / (w * h) for _, _, w, h, a in stats[1:] if a >= 20]
    assert len(areas[7]) >= 10 and len(areas[6]) >= 10 and len(bicycle_fill) >= 3
    assert np.median(areas[7]) >= 18 and np.median(areas[6]) >= 18
    assert np.median(bicycle_fill) > 0.4


def test_walls_show_block_courses_in_every_style():
    """A wall is told from a windowless facade of the same tone by its darker joints: in each
    style the 10th percentile of a wall's brightness lies below 0.86 of its median (generator
    v3: 0.60 GTA-like, 0.82 Cityscapes-like, blurred; v2's plain walls: 0.89 and 0.91)."""
    size = SCALES['small'].gta_size
    for style in ('gta', 'cityscapes'):
        ratios = []
        for i in range(60):
            img, code = render_sample(style, 'train', i, size, 0)[:2]
            wall = code_to_trainid(code) == 3
            if wall.sum() > 200:
                lum = img.astype(np.float64).mean(2)[wall]
                ratios.append(np.percentile(lum, 10) / np.median(lum))
        assert len(ratios) >= 10, style
        assert np.median(ratios) < 0.86, (style, np.median(ratios))


@pytest.mark.integration
def test_the_demo_refuses_data_of_an_older_generator(tmp_path):
    """demo.sh reuses converted data only when the generator that wrote it is this checkout's:
    otherwise it stops, says how to regenerate, and deletes nothing."""
    import subprocess

    from data_helpers import REPO
    for domain in ('gta', 'synthia', 'cityscapes'):
        (tmp_path / domain).mkdir()
        (tmp_path / domain / 'sample_class_stats.json').write_text('[]')
    env = dict(os.environ, DEMO_DATA=str(tmp_path), DEMO_WORK=str(tmp_path / 'work'))
    proc = subprocess.run(['bash', 'tools/demo.sh'], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert (f'was written by version 1 of the synthetic generator; this checkout\'s\nis '
            f'version {GENERATOR_VERSION}. Delete it and the runs trained on it '
            f'(rm -rf {tmp_path} {tmp_path / "work"})') in proc.stderr
    assert (tmp_path / 'gta' / 'sample_class_stats.json').exists()
    assert not (tmp_path / 'work').exists()
