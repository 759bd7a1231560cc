# HRDA with the DeepLabV2 classifier on ResNet-101-V1c (HRDA exp 41's DLv2 variant).
_base_ = ['deeplabv2red_r101v1c.py']
model = dict(
    type='HRDAEncoderDecoder',
    scales=[1, 0.5],
    hr_crop_size=(512, 512),
    # Output stride 8 at the 2x scale ratio: detail-crop offsets in multiples of 16.
    crop_coord_divisible=16,
    hr_slide_inference=True,
    hr_slide_overlapping=True,
    blur_hr_crop=False,
    feature_scale=0.5,
    decode_head=dict(
        type='HRDAHead',
        single_scale_head='DLV2Head',
        attention_classwise=True,
        hr_loss_weight=0.1,
        lr_loss_weight=0.0,
        fixed_attention=None),
    test_cfg=dict(mode='slide', batched_slide=True, crop_size=(1024, 1024), stride=(512, 512)))
