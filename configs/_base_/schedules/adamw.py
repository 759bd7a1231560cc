# AdamW as in DAFormer/HRDA (lhoyer/DAFormer e6f6e041, configs/_base_/schedules/adamw.py).
# The decode head trains at 10x the encoder's lr;
# MiT configs also set paramwise_cfg.custom_keys pos_block/norm to decay_mult=0.
optimizer = dict(
    type='AdamW',
    lr=6e-05,
    betas=(0.9, 0.999),
    weight_decay=0.01,
    paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mult=10.0))))
