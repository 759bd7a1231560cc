# DeepLabV2 "dlv2red" (dilations 6 and 12 only) on ResNet-101-V1c at output stride 8, as
# DAFormer's deeplabv2red_r50-d8.py with depth=101. BN stays trainable (norm_eval=False).
norm_cfg = dict(type='BN', requires_grad=True)
find_unused_parameters = True
model = dict(
    type='UDAEncoderDecoder',
    # open-mmlab's resnet101_v1c (also accepted: timm resnet101c, torchvision resnet101).
    pretrained='pretrained/resnet101_v1c.pth',
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='DLV2Head',
        in_channels=2048,
        in_index=3,
        dilations=(6, 12),
        num_classes=19,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
