"""DAFormer/HRDA checkpoints: the names and shapes of their released files convert to this
project's and back, load strictly through tools/test.py's path and give the same model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from mmcv import Config
from mmseg.models import build_segmentor
from uda_helpers import tiny_model_cfg

from mmseg_uda.apis.test import load_initial_weights, load_student_checkpoint
from mmseg_uda.models.daformer_checkpoints import from_daformer, is_daformer_layout, to_daformer
from mmseg_uda.models.uda import build_train_model

REPO = Path(__file__).resolve().parents[2]
KEYS = REPO.parent / 'shared' / 'reference' / 'checkpoint_keys'
MODELS = {'daformer': ('daformer_mitb5_dacs.json', 'daformer_sepaspp_mitb5.py'),
          'hrda': ('hrda_mitb5_dacs.json', 'hrda_daformer_sepaspp_mitb5.py')}
DACS_PARTS = ('model', 'ema_model', 'imnet_model')
needs_keys = pytest.mark.skipif(not KEYS.is_dir(), reason='shared/reference not present')


def _reference(kind: str) -> dict:
    return json.loads((KEYS / MODELS[kind][0]).read_text())


def _segmentor(kind: str, **model_overrides) -> torch.nn.Module:
    cfg = Config.fromfile(str(REPO / 'configs' / '_base_' / 'models' / MODELS[kind][1]))
    cfg.model.pretrained = None
    cfg.model.update(model_overrides)
    torch.manual_seed(0)
    return build_segmentor(cfg.model).eval()


def _shapes(state: dict) -> dict:
    return {k: list(v.shape) for k, v in state.items()}


@pytest.fixture(scope='module', params=sorted(MODELS))
def full_size(request):
    """(kind, our segmentor with random weights, its reference name → shape lists)."""
    if not KEYS.is_dir():
        pytest.skip('shared/reference not present')
    return request.param, _segmentor(request.param), _reference(request.param)


@needs_keys
def test_their_names_and_shapes_become_exactly_ours(full_size):
    kind, model, ref = full_size
    ours = _shapes(model.state_dict())
    for part, prefixes in (('segmentor', ('',)), ('dacs', tuple(p + '.' for p in DACS_PARTS))):
        theirs = {k: torch.empty(shape, device='meta') for k, shape in ref[part].items()}
        assert is_daformer_layout(theirs)
        converted, summary = from_daformer(theirs)
        assert _shapes(converted) == {p + k: s for p in prefixes for k, s in ours.items()}
        assert summary.qkv == 52 * len(prefixes)  # MiT-B5: 3 + 6 + 40 + 3 blocks
        assert summary.tensors_in - summary.tensors_out == 52 * 2 * len(prefixes)


@needs_keys
def test_export_has_their_names_and_loads_back_through_the_test_path(full_size, tmp_path):
    kind, model, ref = full_size
    exported, _ = to_daformer(model.state_dict())
    assert _shapes(exported) == ref['segmentor']
    # A whole DACS checkpoint as DAFormer writes it (the three parts share storage here).
    dacs = {f'{p}.{k}': v for p in DACS_PARTS for k, v in exported.items()}
    assert _shapes(dacs) == ref['dacs']
    path = tmp_path / f'{kind}_dacs.pth'
    torch.save(dict(state_dict=dacs, meta=dict(iter=40000)), path)
    del dacs
    fresh = _segmentor(kind)
    fresh.load_state_dict({k: torch.zeros_like(v) for k, v in fresh.state_dict().items()})
    assert load_student_checkpoint(fresh, str(path))['iter'] == 40000
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    if kind == 'daformer':
        img = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.equal(fresh.extract_feat(img)[-1], model.extract_feat(img)[-1])
            feats = model.extract_feat(img)
            assert torch.equal(fresh.decode_head(feats), model.decode_head(feats))


@needs_keys
def test_round_trips_are_exact(full_size):
    kind, model, ref = full_size
    ours = model.state_dict()
    back, _ = from_daformer(to_daformer(ours)[0])
    assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)
    torch.manual_seed(1)
    theirs = {k: torch.randn(shape) if shape else torch.tensor(3)
              for k, shape in ref['segmentor'].items()}
    again, _ = to_daformer(from_daformer(theirs)[0])
    assert again.keys() == theirs.keys()
    assert all(torch.equal(again[k], theirs[k]) for k in theirs)


def _tiny(kind: str = 'daformer', **overrides) -> torch.nn.Module:
    cfg = tiny_model_cfg(kind)
    cfg.update(overrides)
    torch.manual_seed(0)
    return build_segmentor(cfg).eval()


def _save_daformer(model: torch.nn.Module, path: Path, parts=('',)) -> Path:
    exported, _ = to_daformer(model.state_dict())
    torch.save(dict(state_dict={p + k: v for p in parts for k, v in exported.items()}), path)
    return path


def test_checkpoints_of_another_kind_name_the_mismatch(tmp_path):
    path = _save_daformer(_tiny(), tmp_path / 'tiny.pth')
    with pytest.raises(ValueError, match=r'tiny\.pth does not match.*19 classes and the config '
                                         r'16 \(decode_head\.num_classes\)'):
        load_student_checkpoint(_tiny(decode_head=dict(num_classes=16)), str(path))
    with pytest.raises(ValueError, match='another architecture or backbone'):
        load_student_checkpoint(_tiny('dlv2'), str(path))
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ValueError, match=r'cannot read the checkpoint .*truncated\.pth: it is '
                                         'truncated, corrupt or not a PyTorch file'):
        load_student_checkpoint(_tiny(), str(truncated))


def _tiny_dacs():
    from blv_patches import apply_blv
    model = apply_blv(dict(model=tiny_model_cfg('daformer')), [100 * (i + 1) for i in range(19)])
    dacs = build_train_model(dict(model=model['model'],
                                  uda=dict(type='DACS', imnet_feature_dist_lambda=0.005)))
    dacs.init_weights()
    return dacs


def test_load_from_takes_a_daformer_segmentor_as_the_student(tmp_path):
    source = _tiny()
    path = _save_daformer(source, tmp_path / 'segmentor.pth')
    dacs = _tiny_dacs()
    imnet_before = {k: v.clone() for k, v in dacs.imnet_model.state_dict().items()}
    load_initial_weights(dacs, str(path))
    for key, value in source.state_dict().items():
        assert torch.equal(dacs.model.state_dict()[key], value), key
    assert all(torch.equal(dacs.imnet_model.state_dict()[k], v) for k, v in imnet_before.items())


def test_load_from_takes_a_whole_daformer_dacs_checkpoint(tmp_path):
    source = _tiny()
    path = _save_daformer(source, tmp_path / 'dacs.pth', parts=[p + '.' for p in DACS_PARTS])
    dacs = _tiny_dacs()
    dacs.local_iter = 5
    load_initial_weights(dacs, str(path))
    for part in DACS_PARTS:
        state = getattr(dacs, part).state_dict()
        assert all(torch.equal(state[k], v) for k, v in source.state_dict().items()), part
    assert dacs.local_iter == 5  # weights only: the iteration is not a checkpoint's to set
    with pytest.raises(ValueError, match='does not match.*19 classes and the config 16'):
        bad = build_train_model(dict(model=tiny_model_cfg('daformer'), uda=dict(type='DACS')))
        bad.model.decode_head.conv_seg = torch.nn.Conv2d(64, 16, 1)
        load_initial_weights(bad, str(path))


def test_load_from_gives_a_plain_segmentor_the_student_of_a_uda_checkpoint(tmp_path):
    """A fine-tune from a UDA run (experiment 3's supervised rows from a source warm-up): the
    student's weights, not the teacher's or the ImageNet model's."""
    student, teacher, target = _tiny(), _tiny(), _tiny()   # one seed: shift all but one
    with torch.no_grad():
        for shift, model in ((1.0, teacher), (2.0, target)):
            for p in model.parameters():
                p.add_(shift)
    path = tmp_path / 'dacs.pth'
    state = {f'model.{k}': v for k, v in student.state_dict().items()}
    state.update({f'ema_model.{k}': v for k, v in teacher.state_dict().items()})
    torch.save(dict(state_dict=state, meta=dict(iter=10)), path)
    load_initial_weights(target, str(path))
    for key, value in student.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_convert_tool_writes_both_directions(tmp_path):
    from experiments_helpers import load_script
    tool = load_script('tools/convert_pretrained.py')
    source = _tiny()
    theirs = _save_daformer(source, tmp_path / 'theirs.pth', parts=['model.'])
    ours, back = tmp_path / 'ours.pth', tmp_path / 'back.pth'
    config = str(REPO / 'configs' / '_base_' / 'models' / 'tiny_daformer_mitb0.py')
    assert tool.main(['daformer', str(theirs), str(ours), '--check', config]) == 0
    assert tool.main(['daformer', str(ours), str(back), '--reverse']) == 0
    a, b = (torch.load(p, weights_only=False)['state_dict'] for p in (theirs, back))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    bad = str(REPO / 'configs' / '_base_' / 'models' / 'tiny_deeplabv2red_r18v1c.py')
    assert tool.main(['daformer', str(theirs), str(ours), '--check', bad]) == 1
