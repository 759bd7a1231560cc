# Poly decay (power 1) to 0 after a linear warmup over 1500 iterations; 40k iterations.
lr_config = dict(
    policy='poly',
    warmup='linear',
    warmup_iters=1500,
    warmup_ratio=1e-6,
    power=1.0,
    min_lr=0.0,
    by_epoch=False)
# ResumableIterBasedRunner: IterBasedRunner whose checkpoints resume bit-exactly.
runner = dict(type='ResumableIterBasedRunner', max_iters=40000)
# Atomic checkpoints every 2000 iterations (a pre-empted job loses at most that much), the
# two newest kept (the policy: docs/scale.md, "Safe checkpoints").
checkpoint_config = dict(by_epoch=False, interval=2000, max_keep_ckpts=2)
evaluation = dict(interval=4000, metric='mIoU')
