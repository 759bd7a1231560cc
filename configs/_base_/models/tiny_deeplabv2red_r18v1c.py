# A tiny DeepLabV2 for tests and CPU demos: ResNet-18-V1c (BasicBlock, 512 output channels)
# at output stride 8 with the dlv2red classifier; random init.
_base_ = ['deeplabv2red_r101v1c.py']
model = dict(
    pretrained=None,
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512))
