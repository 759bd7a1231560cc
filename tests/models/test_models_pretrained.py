"""Pretrained backbone files: SegFormer MiT, timm / torchvision / open-mmlab ResNet-V1c."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import timm
import torch
import torchvision
from mmseg.models.backbones import MixVisionTransformer, ResNetV1c
from models_helpers import build_model, segformer_mit_state_dict
from safetensors.torch import save_file

from mmseg_uda.models import load_pretrained

REPO = Path(__file__).resolve().parents[2]
TINY_MIT = dict(embed_dims=32, num_layers=[1, 2, 1, 1], num_heads=[1, 2, 5, 8])


def _tiny_mit():
    return MixVisionTransformer(**TINY_MIT)


def _save(tmp_path, obj, name='ckpt.pth'):
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def _assert_mit_tensors_landed(mit, src):
    dst = mit.state_dict()
    for stage in range(1, 5):
        s = stage - 1
        torch.testing.assert_close(dst[f'layers.{s}.0.projection.weight'],
                                   src[f'patch_embed{stage}.proj.weight'])
        torch.testing.assert_close(dst[f'layers.{s}.2.bias'], src[f'norm{stage}.bias'])
        for block in range(TINY_MIT['num_layers'][s]):
            old, new = f'block{stage}.{block}', f'layers.{s}.1.{block}'
            c = src[f'{old}.attn.q.weight'].shape[0]
            in_proj = dst[f'{new}.attn.attn.in_proj_weight']
            torch.testing.assert_close(in_proj[:c], src[f'{old}.attn.q.weight'])
            torch.testing.assert_close(in_proj[c:], src[f'{old}.attn.kv.weight'])
            torch.testing.assert_close(dst[f'{new}.attn.attn.in_proj_bias'],
                                       torch.cat([src[f'{old}.attn.q.bias'],
                                                  src[f'{old}.attn.kv.bias']]))
            torch.testing.assert_close(dst[f'{new}.attn.attn.out_proj.weight'],
                                       src[f'{old}.attn.proj.weight'])
            torch.testing.assert_close(dst[f'{new}.ffn.layers.0.weight'][..., 0, 0],
                                       src[f'{old}.mlp.fc1.weight'])
            torch.testing.assert_close(dst[f'{new}.ffn.layers.1.weight'],
                                       src[f'{old}.mlp.dwconv.dwconv.weight'])
            torch.testing.assert_close(dst[f'{new}.ffn.layers.4.weight'][..., 0, 0],
                                       src[f'{old}.mlp.fc2.weight'])
            torch.testing.assert_close(dst[f'{new}.norm2.weight'], src[f'{old}.norm2.weight'])
            if stage < 4:  # stage 4 has sr_ratio 1: no spatial reduction
                torch.testing.assert_close(dst[f'{new}.attn.sr.weight'],
                                           src[f'{old}.attn.sr.weight'])
                torch.testing.assert_close(dst[f'{new}.attn.norm.bias'],
                                           src[f'{old}.attn.norm.bias'])


def test_segformer_mit_file_loads_every_tensor_into_mmseg_mit(tmp_path):
    src = segformer_mit_state_dict(num_layers=TINY_MIT['num_layers'])
    mit = _tiny_mit()
    report = load_pretrained(mit, _save(tmp_path, src))
    assert report.source_format == 'SegFormer'
    assert report.missing == []
    assert report.unexpected == ['head.weight', 'head.bias']  # the ImageNet classifier
    # Every tensor of the file except the classifier lands (q and kv share one in_proj).
    assert len(report.loaded) == len(src) - 2 - 2 * sum(TINY_MIT['num_layers'])
    assert len(report.loaded) == len(mit.state_dict())
    _assert_mit_tensors_landed(mit, src)


def test_segmentor_init_weights_loads_the_configured_pretrained_file(tmp_path):
    src = segformer_mit_state_dict()
    path = _save(tmp_path, src, 'mit_b0_tiny.pth')
    model = build_model('tiny_daformer_mitb0', pretrained=path)
    torch.testing.assert_close(model.backbone.layers[0][0].projection.weight,
                               src['patch_embed1.proj.weight'])


def _resnet50_v1c():
    return ResNetV1c(depth=50)


def _resnet_layers_equal(resnet, src):
    dst = resnet.state_dict()
    keys = [k for k in src if k.startswith('layer')]
    assert keys and all(torch.equal(dst[k], src[k]) for k in keys)


def test_timm_resnet_c_loads_deep_stem_and_all_stages(tmp_path):
    src = timm.create_model('resnet50c', pretrained=False).state_dict()
    resnet = _resnet50_v1c()
    report = load_pretrained(resnet, _save(tmp_path, src))
    assert report.source_format == 'timm (deep stem)'
    assert report.missing == []
    assert report.unexpected == ['fc.weight', 'fc.bias']
    dst = resnet.state_dict()
    for old, new in [('conv1.0.weight', 'stem.0.weight'), ('conv1.3.weight', 'stem.3.weight'),
                     ('conv1.6.weight', 'stem.6.weight'), ('conv1.4.running_var',
                                                           'stem.4.running_var'),
                     ('bn1.weight', 'stem.7.weight'), ('bn1.running_mean', 'stem.7.running_mean')]:
        assert torch.equal(dst[new], src[old]), new
    _resnet_layers_equal(resnet, src)


def test_timm_safetensors_file_loads_like_its_torch_file(tmp_path):
    src = timm.create_model('resnet50c', pretrained=False).state_dict()
    path = str(tmp_path / 'model.safetensors')
    save_file(src, path)
    resnet = _resnet50_v1c()
    report = load_pretrained(resnet, path)
    assert report.source_format == 'timm (deep stem)' and report.missing == []
    assert torch.equal(resnet.state_dict()['stem.7.running_var'], src['bn1.running_var'])
    (tmp_path / 'broken.safetensors').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='not a safetensors checkpoint'):
        load_pretrained(resnet, str(tmp_path / 'broken.safetensors'))


def test_torchvision_resnet_loads_stages_and_reports_the_incompatible_stem(tmp_path):
    src = torchvision.models.resnet50(weights=None).state_dict()
    resnet = _resnet50_v1c()
    report = load_pretrained(resnet, _save(tmp_path, src))
    assert report.source_format == 'torchvision'
    assert report.missing and all(k.startswith('stem.') for k in report.missing)
    assert set(report.unexpected) == {'conv1.weight', 'bn1.weight', 'bn1.bias',
                                      'bn1.running_mean', 'bn1.running_var',
                                      'bn1.num_batches_tracked', 'fc.weight', 'fc.bias'}
    _resnet_layers_equal(resnet, src)


def test_open_mmlab_and_segmentor_checkpoints_load_unchanged(tmp_path):
    torch.manual_seed(1)
    src = _resnet50_v1c().state_dict()
    wrapped = {'meta': {'note': 'open-mmlab'}, 'state_dict': src}
    resnet = _resnet50_v1c()
    report = load_pretrained(resnet, _save(tmp_path, wrapped))
    assert report.source_format == 'open-mmlab' and not report.missing and not report.unexpected
    _resnet_layers_equal(resnet, src)
    # A whole-segmentor checkpoint: the backbone part is used.
    seg = {'state_dict': {**{f'backbone.{k}': v for k, v in src.items()},
                          'decode_head.conv_seg.weight': torch.zeros(19, 8, 1, 1)}}
    report = load_pretrained(_resnet50_v1c(), _save(tmp_path, seg, 'seg.pth'))
    assert not report.missing and not report.unexpected


def test_missing_file_and_non_checkpoint_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match='Pretrained weights'):
        load_pretrained(_tiny_mit(), str(tmp_path / 'nope.pth'))
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(ValueError, match='not a PyTorch checkpoint'):
        load_pretrained(_tiny_mit(), str(text))


def test_checkpoint_of_another_architecture_or_size_fails_clearly(tmp_path):
    resnet_file = _save(tmp_path, timm.create_model('resnet50c').state_dict(), 'r50.pth')
    with pytest.raises(ValueError, match='not a checkpoint of MixVisionTransformer.*'
                                         'convert_pretrained.py mit'):
        load_pretrained(_tiny_mit(), resnet_file)
    mit_file = _save(tmp_path, segformer_mit_state_dict(), 'mit.pth')
    with pytest.raises(ValueError, match='not a checkpoint of ResNetV1c'):
        load_pretrained(_resnet50_v1c(), mit_file)
    with pytest.raises(ValueError, match='another model size'):
        load_pretrained(MixVisionTransformer(embed_dims=64, num_layers=[1, 1, 1, 1]), mit_file)


def test_strict_loading_raises_on_missing_keys(tmp_path):
    src = segformer_mit_state_dict(num_layers=(1, 1, 1, 1))
    with pytest.raises(ValueError, match='missing in the file'):
        load_pretrained(_tiny_mit(), _save(tmp_path, src), strict=True)  # 2 blocks in stage 2


def _convert_pretrained_main():
    spec = importlib.util.spec_from_file_location('convert_pretrained',
                                                  REPO / 'tools' / 'convert_pretrained.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_convert_pretrained_cli_writes_an_mmseg_checkpoint_that_fits_the_config(tmp_path):
    src = segformer_mit_state_dict()  # MiT-B0 widths, one block per stage
    out = tmp_path / 'converted' / 'mit_mmseg.pth'
    check = str(REPO / 'configs/_base_/models/tiny_daformer_mitb0.py')
    main = _convert_pretrained_main()
    assert main(['mit', _save(tmp_path, src), str(out), '--check', check]) == 0
    converted = torch.load(out, weights_only=True)
    assert converted['meta']['source_format'] == 'SegFormer'
    assert 'layers.0.1.0.attn.attn.in_proj_weight' in converted['state_dict']
    assert [p.name for p in out.parent.iterdir()] == ['mit_mmseg.pth']  # no temp file left
    mit = MixVisionTransformer(embed_dims=32, num_layers=[1, 1, 1, 1], num_heads=[1, 2, 5, 8])
    report = load_pretrained(mit, str(out))
    assert report.source_format == 'mmseg' and report.missing == []
    torch.testing.assert_close(mit.state_dict()['layers.3.2.weight'], src['norm4.weight'])
    # A file that does not fit the config's backbone: exit status 1.
    resnet = _save(tmp_path, timm.create_model('resnet50c').state_dict(), 'r50.pth')
    assert main(['resnet', resnet, str(tmp_path / 'r50_mmseg.pth'), '--check', check]) == 1
