# HRDA with the DAFormer decoder on MiT-B5 ("hrda1-512-0.1_daformer_sepaspp", HRDA exp 40):
# 1024x1024 training crops; context at scale 0.5, a 512x512 detail crop at full resolution.
_base_ = ['daformer_sepaspp_mitb5.py']
model = dict(
    type='HRDAEncoderDecoder',
    scales=[1, 0.5],
    hr_crop_size=(512, 512),
    # Detail-crop offsets in multiples of 8: stride 4 of the decoder at the 2x scale ratio.
    crop_coord_divisible=8,
    hr_slide_inference=True,
    # Ablations: hr_slide_overlapping=False (no overlap), blur_hr_crop=True (blurred HR),
    # scales=[0.5, 0.5] (same scale); decode_head.fixed_attention=0.5 (fixed attention),
    # decode_head.attention_classwise=False (single attention channel).
    hr_slide_overlapping=True,
    blur_hr_crop=False,
    # The ImageNet feature distance compares the context (scale 0.5) features.
    feature_scale=0.5,
    decode_head=dict(
        type='HRDAHead',
        single_scale_head='DAFormerHead',
        attention_classwise=True,
        attention_embed_dim=256,
        hr_loss_weight=0.1,
        lr_loss_weight=0.0,
        fixed_attention=None),
    test_cfg=dict(mode='slide', batched_slide=True, crop_size=(1024, 1024), stride=(512, 512)))
