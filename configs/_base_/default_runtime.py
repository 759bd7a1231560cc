# Logging (text + TensorBoard every 50 iterations), no resume by default, one GPU or CPU.
log_config = dict(
    interval=50,
    hooks=[
        dict(type='TextLoggerHook', by_epoch=False),
        dict(type='TensorboardLoggerHook', by_epoch=False),
    ])
# Where the run trains: 'cuda' (stops with the reason when torch sees no GPU) or 'cpu'.
# tools/train.py --device overrides it.
device = 'cuda'
# TF32 tensor cores for fp32 matmuls/convolutions on Ampere and newer GPUs (False: full fp32).
tf32 = True
# DDP (mmseg's dist_params keys): backend (NCCL on GPUs, gloo on CPUs unless set), port
# (MASTER_PORT for srun jobs; default derived from SLURM_JOB_ID), timeout (minutes, default 30;
# raise it if rank 0 needs longer to write a checkpoint).
dist_params = dict()
# Mixed precision of the forward passes (losses, BLV noise and the EMA stay fp32):
# amp = dict(enabled=True, dtype='bf16') or dtype='fp16' (with dynamic loss scaling).
# bf16 is the recommended mode on GPUs that have it (Ampere and newer): no loss scaling.
amp = dict(enabled=False, dtype='bf16')
# Under DDP on GPUs: BatchNorm statistics over the global batch (SyncBatchNorm).
sync_bn = False
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
cudnn_benchmark = True
# Data-loader workers: OpenCV single-threaded in each (mmseg's setup_multi_processes), so N
# workers do not start N x cores OpenCV threads.
opencv_num_threads = 0
