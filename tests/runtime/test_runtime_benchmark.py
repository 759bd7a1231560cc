"""tools/benchmark_train.py: runs end to end on the tiny model; its arithmetic on fixed numbers."""
import pytest
import torch

from tools import benchmark_train

pytestmark = pytest.mark.usefixtures('one_torch_thread')


def test_every_amp_and_blv_variant_is_measured():
    results = benchmark_train.bench_model('tiny', torch.device('cpu'), ['off', 'bf16'],
                                          warmup=0, iters=1)
    assert [(r['amp'], r['blv']) for r in results] == [
        ('off', False), ('off', True), ('bf16', False), ('bf16', True)]
    assert all(r['seconds'] > 0 and r['peak_gib'] > 0 for r in results)


def test_rows_give_the_ratio_and_the_40k_extrapolation():
    results = [dict(amp='bf16', blv=False, seconds=0.5, peak_gib=9.0),
               dict(amp='bf16', blv=True, seconds=0.505, peak_gib=9.5)]
    (row,) = benchmark_train.format_rows('hrda_mitb5', 'cuda', results)
    assert row == '| hrda_mitb5 | 1024² | cuda | bf16 | 0.50 | 0.51 | 1.010 | 9.00 | 9.50 | 5.6 h |'
