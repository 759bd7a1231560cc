"""apply_blv: wiring BLV into segmentor configs, and BLV training inside an mmseg model."""
import pytest
import torch
from mmcv import Config
from mmseg.models import build_segmentor

from blv_patches import apply_blv

COUNTS = [float(10 ** (5 - i % 5)) for i in range(19)]
CE = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)


def _mit_b0_segformer(num_classes=19):
    """An mmseg EncoderDecoder of MiT-B0 size (random init)."""
    return dict(
        type='EncoderDecoder',
        backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=32, num_stages=4,
                      num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3],
                      sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3), mlp_ratio=4,
                      qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1),
        decode_head=dict(type='SegformerHead', in_channels=[32, 64, 160, 256],
                         in_index=[0, 1, 2, 3], channels=64, dropout_ratio=0.1,
                         num_classes=num_classes, align_corners=False, loss_decode=dict(CE)),
        train_cfg=dict(), test_cfg=dict(mode='whole'))


def test_every_head_of_a_plain_config_becomes_blv():
    cfg = Config(dict(model=_mit_b0_segformer()))
    cfg.model.auxiliary_head = [
        dict(type='FCNHead', in_channels=64, channels=16, num_classes=19,
             loss_decode=dict(CE, loss_weight=0.4)),
        dict(type='FCNHead', in_channels=160, channels=16, num_classes=19,
             loss_decode=[dict(CE, loss_weight=0.4), dict(type='DiceLoss')])]
    with pytest.warns(UserWarning, match=r'auxiliary_head\[1\]\.loss_decode\[1\] is a DiceLoss'):
        out = apply_blv(cfg, COUNTS, sigma=6.0, variation='uniform')
    assert isinstance(out, Config)
    decode = out.model.decode_head.loss_decode
    assert decode.type == 'BLVLoss' and decode.sigma == 6.0 and decode.variation == 'uniform'
    assert decode.class_counts == COUNTS
    aux0, aux1 = out.model.auxiliary_head
    assert aux0.loss_decode.type == 'BLVLoss' and aux0.loss_decode.loss_weight == 0.4
    assert [lc.type for lc in aux1.loss_decode] == ['BLVLoss', 'DiceLoss']
    # The input config is untouched.
    assert cfg.model.decode_head.loss_decode.type == 'CrossEntropyLoss'


def test_config_from_a_string_keeps_working():
    text = 'model = ' + repr(_mit_b0_segformer())
    out = apply_blv(Config.fromstring(text, '.py'), COUNTS)
    assert out.model.decode_head.loss_decode.type == 'BLVLoss'


def test_nested_heads_are_rewritten():
    # HRDA-style: the outer head wraps a single-scale head that carries its own loss config.
    model = dict(type='HRDAEncoderDecoder', decode_head=dict(
        type='HRDAHead', single_scale_head='DAFormerHead', loss_decode=dict(CE),
        attention_head=dict(type='DAFormerHead', loss_decode=dict(CE))))
    out = apply_blv(model, 'data/gta/sample_class_stats.json', sigma=4.0)
    assert out['decode_head']['loss_decode']['type'] == 'BLVLoss'
    assert out['decode_head']['attention_head']['loss_decode']['type'] == 'BLVLoss'
    assert out['decode_head']['loss_decode']['class_counts'] == 'data/gta/sample_class_stats.json'


def test_apply_blv_rejects_unknown_options_and_configs_without_losses():
    with pytest.raises(KeyError, match="unknown BLV option.*'sigmaa'"):
        apply_blv(dict(model=_mit_b0_segformer()), COUNTS, sigmaa=3)
    with pytest.raises(ValueError, match='no loss_decode'):
        apply_blv(dict(model=dict(type='EncoderDecoder')), COUNTS)
    cfg = dict(model=_mit_b0_segformer())
    cfg['model']['decode_head']['loss_decode']['use_sigmoid'] = True
    with pytest.raises(ValueError, match='sigmoid'):
        apply_blv(cfg, COUNTS)


def test_reapplying_overrides_only_what_is_given():
    once = apply_blv(dict(model=_mit_b0_segformer()), COUNTS, sigma=6.0, balance=False)
    twice = apply_blv(once, COUNTS, sigma=3.0)
    loss = twice['model']['decode_head']['loss_decode']
    assert loss['sigma'] == 3.0 and loss['balance'] is False


def test_encoder_decoder_with_blv_trains_two_iterations_on_cpu():
    cfg = apply_blv(dict(model=_mit_b0_segformer()), COUNTS, sigma=6.0)
    model = build_segmentor(cfg['model'])
    model.init_weights()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    img = torch.randn(2, 3, 64, 64)
    gt = torch.randint(0, 19, (2, 1, 64, 64))
    metas = [dict(img_shape=(64, 64, 3), ori_shape=(64, 64, 3), pad_shape=(64, 64, 3),
                  flip=False)] * 2
    before = [p.detach().clone() for p in model.decode_head.parameters()]
    for _ in range(2):
        optimizer.zero_grad()
        out = model.train_step(dict(img=img, img_metas=metas, gt_semantic_seg=gt), optimizer)
        out['loss'].backward()
        optimizer.step()
        assert 'decode.loss_blv' in out['log_vars']
        # The BLV loss is part of the total that is back-propagated.
        assert out['loss'].item() == pytest.approx(out['log_vars']['loss'])
        assert out['log_vars']['loss'] >= out['log_vars']['decode.loss_blv'] > 0
    after = list(model.decode_head.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after))
    assert model.backbone.layers[0][0].projection.weight.grad.abs().sum() > 0


def test_replace_cross_entropy_puts_lovasz_in_every_head_and_it_trains():
    """Table 5's Lovász baseline: mmseg's LovaszLoss in place of every cross entropy, each
    head's loss weight kept, and a training step that sums it ('loss_lovasz')."""
    import torch
    from mmcv import Config
    from mmseg.models import build_segmentor

    from blv_patches import replace_cross_entropy
    cfg = Config.fromfile('configs/_base_/models/tiny_deeplabv2red_r18v1c.py')._cfg_dict.to_dict()
    cfg['model']['auxiliary_head'] = dict(
        type='FCNHead', in_channels=256, in_index=2, channels=16, num_convs=1, num_classes=19,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))
    lovasz = dict(type='LovaszLoss', reduction='none', loss_name='loss_lovasz')
    out = replace_cross_entropy(cfg, lovasz)
    decode_weight = cfg['model']['decode_head']['loss_decode'].get('loss_weight')
    assert out['model']['decode_head']['loss_decode'] == (
        lovasz if decode_weight is None else dict(lovasz, loss_weight=decode_weight))
    assert out['model']['auxiliary_head']['loss_decode'] == dict(lovasz, loss_weight=0.4)
    assert cfg['model']['auxiliary_head']['loss_decode']['type'] == 'CrossEntropyLoss'  # a copy
    model = build_segmentor(out['model']).train()
    img = torch.randn(2, 3, 64, 64)
    metas = [dict(img_shape=(64, 64, 3), ori_shape=(64, 64, 3), pad_shape=(64, 64, 3),
                  flip=False)] * 2
    losses = model.forward_train(img, metas, torch.randint(0, 19, (2, 1, 64, 64)))
    assert {'decode.loss_lovasz', 'aux.loss_lovasz'} <= set(losses)
    assert torch.isfinite(losses['decode.loss_lovasz']) and losses['decode.loss_lovasz'] > 0
    with pytest.raises(ValueError, match='not a softmax cross entropy'):
        replace_cross_entropy(out, lovasz)


def test_the_released_configs_count_list_is_a_named_option():
    """BLVSetting(counts='released'): the list of every released BLV config, GTA5's counts with
    car's leading digit dropped; the data set's statistics otherwise."""
    from blv_patches.class_frequency import GTA5_PIXEL_COUNTS, RELEASED_CONFIG_COUNTS
    from mmseg_uda.experiments import BLVSetting
    assert [a - b for a, b in zip(GTA5_PIXEL_COUNTS, RELEASED_CONFIG_COUNTS)] == \
        [0] * 13 + [10 ** 9] + [0] * 5
    cfg = dict(model=dict(type='EncoderDecoder', decode_head=dict(
        type='FCNHead', loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))))
    released = BLVSetting(4.0, counts='released')
    out = released.apply(cfg, 'data/cityscapes/sample_class_stats.json')
    loss = out['model']['decode_head']['loss_decode']
    assert loss['class_counts'] == list(RELEASED_CONFIG_COUNTS) and 'counts' not in loss
    assert released.tag() == 'blv4-releasedcounts' and released.meta()['counts'] == 'released'
    data = BLVSetting(4.0).apply(cfg, 'data/cityscapes/sample_class_stats.json')
    assert data['model']['decode_head']['loss_decode']['class_counts'] == \
        'data/cityscapes/sample_class_stats.json'
    assert 'counts' not in BLVSetting(4.0).meta()  # exp_meta of existing runs unchanged
    with pytest.raises(ValueError, match="counts='gta'; choose one of"):
        BLVSetting(4.0, counts='gta')
