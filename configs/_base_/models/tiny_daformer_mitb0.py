# A tiny DAFormer for tests and CPU demos: MiT-B0 widths with one block per stage and a
# 64-channel decoder; random init. Same structure as daformer_sepaspp_mitb5.py.
_base_ = ['daformer_sepaspp_mitb5.py']
model = dict(
    pretrained=None,
    backbone=dict(embed_dims=32, num_layers=[1, 1, 1, 1], drop_path_rate=0.0),
    decode_head=dict(
        in_channels=[32, 64, 160, 256],
        channels=64,
        decoder_params=dict(embed_dims=64)))
