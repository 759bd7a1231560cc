# A tiny HRDA for tests and CPU demos (inputs of 64x64 or more, multiples of 32): the
# tiny_daformer_mitb0 network with a 32x32 detail crop and 64x64 test windows.
_base_ = ['hrda_daformer_sepaspp_mitb5.py']
model = dict(
    pretrained=None,
    backbone=dict(embed_dims=32, num_layers=[1, 1, 1, 1], drop_path_rate=0.0),
    hr_crop_size=(32, 32),
    decode_head=dict(
        in_channels=[32, 64, 160, 256],
        channels=64,
        attention_embed_dim=64,
        decoder_params=dict(embed_dims=64)),
    test_cfg=dict(crop_size=(64, 64), stride=(32, 32)))
