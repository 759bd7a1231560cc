"""The GPU code path, exercised on a CPU-only machine up to the first CUDA call.

Each test fails without its fix: B1 (mmcv's scatter on torch 2), B2 (DDP's broadcast of
CPU-only state under NCCL), no silent CPU fallback, the fp32 outputs of mixed precision, the
device-only accuracy and the per-device CUDA random state.
"""
from __future__ import annotations

import pytest
import torch
from mmcv.parallel import DataContainer
from mmcv.parallel import _functions as mmcv_functions
from mmcv.parallel.scatter_gather import scatter_kwargs
from mmseg.models.losses import accuracy

from mmseg_uda import compat
from mmseg_uda.models.decode_heads.patch_mmseg_heads import pixel_accuracy
from mmseg_uda.runtime import dist as rdist
from mmseg_uda.runtime import rng
from mmseg_uda.runtime.device import DeviceUnavailableError, resolve_device

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only path')
CUDA_CALL = r'(?i)nvidia|cuda|driver|Torch not compiled'


def _stacked_batch():
    return dict(img=DataContainer(torch.zeros(2, 3, 4, 4), stack=True),
                img_metas=DataContainer([[dict(a=1), dict(a=2)]], cpu_only=True))


@needs_no_gpu
def test_b1_mmcv_scatter_to_gpu0_fails_on_torch2_without_the_shim(monkeypatch):
    monkeypatch.setattr(mmcv_functions, '_get_stream', compat.MMCV_GET_STREAM)
    with pytest.raises(AttributeError, match="'int' object has no attribute 'type'"):
        mmcv_functions.Scatter.forward([0], torch.zeros(2))
    with pytest.raises(AttributeError, match="'int' object has no attribute 'type'"):
        scatter_kwargs((), _stacked_batch(), [0])


@needs_no_gpu
def test_b1_with_the_shim_the_scatter_reaches_the_cuda_call():
    assert mmcv_functions._get_stream is compat._copy_stream
    with pytest.raises((RuntimeError, AssertionError), match=CUDA_CALL):
        scatter_kwargs((), _stacked_batch(), [0])  # a real training batch's DataContainers
    # CPU targets need no stream and are unaffected.
    inputs, kwargs = scatter_kwargs((), _stacked_batch(), [-1])
    assert kwargs[0]['img'].shape == (2, 3, 4, 4)


def test_b1_copy_stream_keeps_torch1_semantics():
    assert compat._copy_stream(-1) is None
    assert compat._copy_stream(torch.device('cpu')) is None


class _WithCpuExtraState(torch.nn.Module):
    """Parameters and buffers on the 'meta' device; its extra state is a CPU tensor, as
    UDAWrapper's local_iter."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        self.register_buffer('stat', torch.zeros(3))
        self.register_buffer('lut', torch.zeros(4), persistent=False)

    def get_extra_state(self):
        return torch.tensor(7)

    def set_extra_state(self, state):
        pass


def test_b2_broadcast_sends_no_tensor_off_the_module_device(monkeypatch):
    module = _WithCpuExtraState().to('meta')
    sent = []
    monkeypatch.setattr(rdist, 'is_distributed', lambda: True)
    monkeypatch.setattr(rdist.dist, 'broadcast', lambda tensor, src: sent.append(tensor))
    rdist.broadcast_module_state(module)
    assert {t.device.type for t in sent} == {'meta'}
    assert len(sent) == 4  # weight, bias, stat and the non-persistent lut; no extra state


def test_b2_the_old_state_dict_broadcast_would_send_the_cpu_extra_state():
    # What the previous implementation iterated over: the CPU tensor NCCL cannot send.
    devices = {v.device.type for v in _WithCpuExtraState().to('meta').state_dict().values()}
    assert devices == {'meta', 'cpu'}


@needs_no_gpu
def test_a_gpu_run_without_a_gpu_stops_with_the_reason(monkeypatch):
    with pytest.raises(DeviceUnavailableError, match=r'meant for a GPU.*--device cpu'):
        resolve_device('cuda')
    with pytest.raises(DeviceUnavailableError, match='meant for a GPU'):
        resolve_device(None)  # the default is the GPU
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    if torch.version.cuda is not None:
        with pytest.raises(DeviceUnavailableError, match="CUDA_VISIBLE_DEVICES='' hides"):
            resolve_device('cuda')
    assert resolve_device('cpu') == 'cpu'
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device('gpu')


@needs_no_gpu
def test_configure_for_device_has_no_silent_fallback():
    from mmcv import Config
    with pytest.raises(DeviceUnavailableError):
        compat.configure_for_device(Config(dict(data=dict(workers_per_gpu=0))))
    cfg = compat.configure_for_device(Config(dict(device='cpu', data=dict(workers_per_gpu=0))))
    assert cfg.device == 'cpu'
    cfg = compat.configure_for_device(Config(dict(device='cuda')), 'cpu')  # --device wins
    assert cfg.device == 'cpu'


@pytest.mark.parametrize('ignored', [0.0, 0.3, 1.0])
def test_device_accuracy_equals_mmseg_accuracy(ignored):
    torch.manual_seed(1)
    logit = torch.randn(2, 5, 8, 8)
    label = torch.randint(0, 5, (2, 8, 8))
    label[torch.rand(label.shape) < ignored] = 255
    torch.testing.assert_close(pixel_accuracy(logit, label, 255),
                               accuracy(logit, label, ignore_index=255))


def test_cuda_random_state_of_another_gpu_count_warns_instead_of_raising(monkeypatch):
    state = rng.capture_rng_state()
    state['torch_cuda'] = [torch.zeros(16, dtype=torch.uint8)] * 4  # 4 GPUs' states
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match='CUDA is not available here'):
            rng.restore_rng_state(state)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    with pytest.warns(UserWarning, match='4 CUDA devices and 1 are visible'):
        rng.restore_rng_state(state)


def test_slurm_port_is_derived_from_the_job_id_and_dist_params_are_accepted(monkeypatch):
    env = dict(SLURM_PROCID='0', SLURM_NTASKS='2', SLURM_NODELIST='n1', MASTER_ADDR='n1')
    a = rdist.slurm_environment({**env, 'SLURM_JOB_ID': '123456'})['MASTER_PORT']
    b = rdist.slurm_environment({**env, 'SLURM_JOB_ID': '123457'})['MASTER_PORT']
    assert a != b and a != '29500' and 20000 <= int(a) < 30000
    with pytest.raises(RuntimeError, match='MASTER_PORT'):
        rdist.slurm_environment(env)
    seen = {}
    monkeypatch.setattr(rdist.dist, 'init_process_group',
                        lambda **kw: seen.update(kw) or (_ for _ in ()).throw(SystemExit))
    for key, value in dict(RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1').items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit):
        rdist.init_distributed('pytorch', port=12345, timeout=90)
    import os
    assert os.environ['MASTER_PORT'] == '12345'
    assert seen['timeout'].total_seconds() == 90 * 60
