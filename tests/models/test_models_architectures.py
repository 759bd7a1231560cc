"""The three networks: full-size configs build as in the papers; tiny ones train and infer."""
from __future__ import annotations

import pytest
import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmseg.models import build_segmentor
from mmseg.models.backbones import MixVisionTransformer, ResNetV1c
from models_helpers import build_model, fake_batch, model_cfg

from mmseg_uda.models.decode_heads import DAFormerHead, DLV2Head, HRDAHead

FULL_CONFIGS = ['daformer_sepaspp_mitb5', 'deeplabv2red_r101v1c',
                'hrda_daformer_sepaspp_mitb5', 'hrda_deeplabv2red_r101v1c']


@pytest.mark.parametrize('name', FULL_CONFIGS)
def test_full_size_configs_build_on_cpu_without_pretrained_files(name):
    """The experiment generator must be able to build every config with random init."""
    cfg = model_cfg(name)
    assert cfg.model.pretrained.startswith('pretrained/')
    model = build_segmentor(cfg.model)  # building reads no file; init_weights only warns
    assert model.num_classes == 19
    if name.startswith('hrda'):
        assert isinstance(model.decode_head, HRDAHead)
        assert (model.lr_scale, model.hr_scale, model.hr_crop_size) == (0.5, 1, (512, 512))
        assert model.decode_head.hr_loss_weight == 0.1
        assert model.test_cfg.mode == 'slide' and model.test_cfg.batched_slide


def test_mit_b5_daformer_matches_the_paper_configuration():
    model = build_segmentor(model_cfg('daformer_sepaspp_mitb5').model)
    mit = model.backbone
    assert isinstance(mit, MixVisionTransformer)
    assert [len(stage[1]) for stage in mit.layers] == [3, 6, 40, 3]
    assert [stage[2].normalized_shape[0] for stage in mit.layers] == [64, 128, 320, 512]
    assert [stage[1][0].attn.attn.num_heads for stage in mit.layers] == [1, 2, 5, 8]
    assert [stage[1][0].attn.sr_ratio for stage in mit.layers] == [8, 4, 2, 1]
    assert mit.layers[0][2].eps == 1e-6
    assert [stage[0].projection.kernel_size[0] for stage in mit.layers] == [7, 3, 3, 3]

    head = model.decode_head
    assert isinstance(head, DAFormerHead)
    assert [e.conv.in_channels for e in head.embed_layers] == [64, 128, 320, 512]
    assert all(e.conv.out_channels == 256 and e.norm_cfg is None and not e.with_activation
               for e in head.embed_layers)  # linear embedding, no norm or activation
    branches = head.fuse_layer.branches
    assert len(branches) == 4  # no image-pooling branch
    assert isinstance(branches[0], ConvModule) and branches[0].conv.kernel_size == (1, 1)
    assert branches[0].conv.in_channels == 1024
    for branch, dilation in zip(list(branches)[1:], (6, 12, 18)):
        assert isinstance(branch, DepthwiseSeparableConvModule)
        assert branch.depthwise_conv.conv.dilation == (dilation, dilation)
        assert branch.depthwise_conv.conv.groups == 1024
        assert branch.pointwise_conv.conv.out_channels == 256
        assert branch.pointwise_conv.with_norm and branch.pointwise_conv.with_activation
    bottleneck = head.fuse_layer.bottleneck
    assert bottleneck.conv.kernel_size == (3, 3) and bottleneck.conv.in_channels == 1024
    assert bottleneck.conv.out_channels == 256 and bottleneck.with_norm
    assert head.dropout.p == 0.1 and head.conv_seg.out_channels == 19


def test_deeplabv2red_r101_matches_the_paper_configuration():
    torch.manual_seed(0)
    model = build_segmentor(model_cfg('deeplabv2red_r101v1c').model)
    model.decode_head.init_weights()
    resnet = model.backbone
    assert isinstance(resnet, ResNetV1c) and resnet.deep_stem
    assert [len(layer) for layer in (resnet.layer1, resnet.layer2, resnet.layer3,
                                     resnet.layer4)] == [3, 4, 23, 3]
    assert resnet.layer3[1].conv2.dilation == (2, 2) and resnet.layer4[1].conv2.dilation == (4, 4)
    # contract_dilation: the first block of a dilated stage uses half the dilation
    assert resnet.layer4[0].conv2.dilation == (2, 2)
    assert not resnet.norm_eval
    head = model.decode_head
    assert isinstance(head, DLV2Head) and not hasattr(head, 'conv_seg')
    convs = [m.conv for m in head.aspp_modules]
    assert [c.dilation for c in convs] == [(6, 6), (12, 12)]
    assert all(c.in_channels == 2048 and c.out_channels == 19 and c.bias is not None
               and c.kernel_size == (3, 3) for c in convs)
    assert all(not m.with_norm and not m.with_activation for m in head.aspp_modules)
    weights = torch.cat([c.weight.flatten() for c in convs])
    assert abs(weights.std().item() - 0.01) < 0.001 and convs[0].bias.abs().max() == 0


TINY_CONFIGS = {
    # name: (config, overrides, input size, logit stride)
    'daformer': ('tiny_daformer_mitb0', {}, 64, 4),
    'dlv2': ('tiny_deeplabv2red_r18v1c', {}, 64, 8),
    'hrda_daformer': ('tiny_hrda_daformer_mitb0', {}, 64, 4),
    'hrda_dlv2': ('hrda_deeplabv2red_r101v1c',
                  dict(pretrained=None, backbone=dict(depth=18),
                       decode_head=dict(in_channels=512), hr_crop_size=(64, 64),
                       test_cfg=dict(crop_size=(128, 128), stride=(64, 64))), 128, 8),
}


@pytest.mark.parametrize('name', TINY_CONFIGS)
def test_model_trains_a_step_and_infers_from_its_config(name):
    config, overrides, size, stride = TINY_CONFIGS[name]
    model = build_model(config, **overrides)
    img, metas, gt = fake_batch(size=size)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.backbone.state_dict()['layers.0.0.projection.weight' if 'daformer' in name
                                         else 'stem.0.weight'].clone()
    losses = model.forward_train(img, metas, gt)
    loss, log_vars = model._parse_losses(losses)
    assert torch.isfinite(loss) and loss.item() > 0
    expected_terms = {'decode.loss_ce'} | ({'decode.hr.loss_ce'} if 'hrda' in name else set())
    assert {k for k in log_vars if 'loss_' in k} == expected_terms
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    after = model.backbone.state_dict()['layers.0.0.projection.weight' if 'daformer' in name
                                        else 'stem.0.weight']
    assert not torch.equal(before, after)  # the step reached the first backbone layer

    model.eval()
    with torch.no_grad():
        if 'hrda' in name:
            model.debug = True
            model.encode_decode(img, metas)
            logits = model.debug_output['fused']
        else:
            logits = model.decode_head.forward_test(model.extract_feat(img), metas,
                                                    model.test_cfg)
        seg = model.simple_test(img, metas, rescale=True)
    assert logits.shape[-1] == size // stride  # decoder output stride (HRDA: of the HR image)
    assert len(seg) == 2 and seg[0].shape == (size, size)


@pytest.mark.parametrize('norm_eps, embed_eps', [('segformer', 1e-5), ('mmseg', 1e-6)])
def test_mit_norms_have_segformers_eps_by_default(norm_eps, embed_eps):
    """SegFormer/DAFormer: patch-embedding and spatial-reduction norms eps 1e-5, the blocks'
    norm1/norm2 and the stage norms 1e-6. norm_eps='mmseg' gives mmseg 0.30's 1e-6 throughout."""
    from mmseg.models import build_backbone

    from mmseg_uda.models.backbones import MiTSegFormerNorms

    cfg = dict(type='MiTSegFormerNorms', embed_dims=32, num_layers=[1, 1, 1, 1],
               num_heads=[1, 2, 5, 8], sr_ratios=[8, 4, 2, 1], norm_eps=norm_eps)
    mit = build_backbone(cfg)
    assert isinstance(mit, MiTSegFormerNorms) and isinstance(mit, MixVisionTransformer)
    for stage, (patch_embed, blocks, stage_norm) in enumerate(mit.layers):
        assert patch_embed.norm.eps == embed_eps
        assert stage_norm.eps == 1e-6
        for block in blocks:
            assert block.norm1.eps == block.norm2.eps == 1e-6
            if stage < 3:  # sr_ratio > 1
                assert block.attn.norm.eps == embed_eps
            else:
                assert not hasattr(block.attn, 'norm')
    with pytest.raises(ValueError, match='norm_eps must be one of'):
        build_backbone(dict(cfg, norm_eps='torch'))
