# Logging (text + TensorBoard every 50 iterations), no resume by default, one GPU or CPU.
log_config = dict(
    interval=50,
    hooks=[
        dict(type='TextLoggerHook', by_epoch=False),
        dict(type='TensorboardLoggerHook', by_epoch=False),
    ])
# DDP backend: NCCL on GPUs, gloo on CPUs unless set here (e.g. backend='nccl').
dist_params = dict()
# Mixed precision of the forward passes (losses, BLV noise and the EMA stay fp32):
# amp = dict(enabled=True, dtype='bf16') or dtype='fp16' (with dynamic loss scaling).
amp = dict(enabled=False, dtype='bf16')
# Under DDP on GPUs: BatchNorm statistics over the global batch (SyncBatchNorm).
sync_bn = False
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
cudnn_benchmark = True
