"""compat.fix_mmddp_forward: calling an MMDistributedDataParallel model works on torch 2.x."""
import pytest
import torch
from mmcv.parallel import DataContainer, MMDistributedDataParallel
from runtime_helpers import run_on_ranks

from mmseg_uda import compat

pytestmark = pytest.mark.usefixtures('one_torch_thread')


class _Segmentor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def forward(self, img, img_metas, return_loss=False):
        assert img_metas[0]['ori_shape'] == (4, 4)  # scattered, not a DataContainer
        return self.conv(img)


def _eval_forward(rank, world_size, use_mmcv_original):
    torch.manual_seed(0)
    model = MMDistributedDataParallel(_Segmentor(), broadcast_buffers=False)
    if use_mmcv_original:
        MMDistributedDataParallel._run_ddp_forward = compat.MMCV_RUN_DDP_FORWARD
    img = torch.randn(1, 3, 4, 4)
    metas = DataContainer([[dict(ori_shape=(4, 4))]], cpu_only=True)
    try:
        with torch.no_grad():  # as in mmseg's multi_gpu_test
            out = model(img=img, img_metas=metas, return_loss=False)
    except AttributeError as err:
        return f'AttributeError: {err}'
    return torch.equal(out, model.module.conv(img))


@pytest.mark.integration
def test_mmcv_forward_fails_on_torch2():
    results = run_on_ranks(_eval_forward, 2, True)
    assert all('_use_replicated_tensor_module' in r for r in results)


@pytest.mark.integration
def test_fixed_forward_scatters_datacontainers_on_cpu():
    assert run_on_ranks(_eval_forward, 2, False) == [True, True]
