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


def test_rows_give_the_ratio_and_the_runs_extrapolation():
    run = dict(crop='1024×1024', iterations=40000)
    results = [dict(amp='bf16', blv=False, seconds=0.5, peak_gib=9.0, **run),
               dict(amp='bf16', blv=True, seconds=0.505, peak_gib=9.5, **run)]
    (row,) = benchmark_train.format_rows('hrda_mitb5', 'cuda', results)
    assert row == ('| hrda_mitb5 | 1024×1024 | cuda | bf16 | 0.50 | 0.51 | 1.010 | 9.00 | 9.50 '
                   '| 40k: 5.6 h |')


def test_the_experiment_models_are_built_as_the_sweep_builds_them():
    """Table 1's MiT-b0 (a supervised step, as SourceOnly) and Table 2's ResNet-101 +
    DeepLabV3+ (a self-training step) with BLV, their crops and their runs' iterations."""
    t1 = benchmark_train.build_config('table1_mitb0')
    assert t1.uda.type == 'SourceOnly' and t1.model.backbone.type == 'MixVisionTransformer'
    assert benchmark_train.crop_of('table1_mitb0', t1) == (512, 1024)
    assert benchmark_train.iterations_of('table1_mitb0', t1) == 160000
    t2 = benchmark_train.build_config('table2_r101')
    assert t2.uda.type == 'SelfTraining' and t2.model.decode_head.loss_decode.type == 'BLVLoss'
    assert benchmark_train.crop_of('table2_r101', t2) == (769, 769)
    assert benchmark_train.iterations_of('table2_r101', t2) == 200 * 174
    assert t1.model.pretrained is None and t2.model.pretrained is None
    # Built without data: fixed counts in place of the data set's statistics file.
    assert isinstance(t2.model.decode_head.loss_decode.class_counts, list)
    assert t2.model.decode_head.loss_decode.sigma == 4.0
    model = benchmark_train.build_train_model(t1)
    assert type(model).__name__ == 'SourceOnly'
