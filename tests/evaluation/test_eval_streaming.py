"""Streaming mIoU: equal to mmseg's eval_metrics, SYNTHIA subsets, the training hook."""
import json
import math
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmcv.parallel import MMDataParallel
from mmseg.apis import single_gpu_test
from mmseg.core.evaluation import eval_metrics
from mmseg.datasets import CityscapesDataset, build_dataloader, build_dataset
from mmseg.models import build_segmentor
from uda_helpers import test_pipeline, tiny_model_cfg, write_cityscapes_like

from mmseg_uda.core.evaluation import (
    CITYSCAPES19,
    SYNTHIA16,
    ConfusionMatrix,
    evaluation_protocol,
    format_iou_table,
    stream_evaluate,
    summarize_iou,
)
from mmseg_uda.core.hooks import StreamingEvalHook

CLASSES = CityscapesDataset.CLASSES


def _mmseg_iou(preds, labels, num_classes=19):
    metrics = eval_metrics(preds, labels, num_classes, 255, metrics=['mIoU'])
    return metrics['IoU']


def _assert_same_iou(ours: torch.Tensor, theirs: np.ndarray):
    ours = ours.numpy()
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)], rtol=1e-12)


def test_confusion_matrix_equals_mmseg_eval_metrics():
    rng = np.random.default_rng(0)
    preds, labels = [], []
    for shape in [(17, 23), (40, 8), (5, 5)]:
        label = rng.integers(0, 16, shape)                 # classes 16-18 never in the labels
        label[rng.random(shape) < 0.2] = 255
        pred = np.where(rng.random(shape) < 0.6, label, rng.integers(0, 17, shape))
        pred[pred == 255] = 0
        preds.append(pred)
        labels.append(label)
    confusion = ConfusionMatrix(19)
    for pred, label in zip(preds, labels):
        confusion.update(torch.from_numpy(pred), torch.from_numpy(label))
    theirs = _mmseg_iou(preds, labels)
    _assert_same_iou(confusion.iou(), theirs)
    assert math.isnan(confusion.iou()[17])   # absent from labels and predictions
    assert confusion.iou()[16] == 0          # predicted but never labelled
    summary = summarize_iou(confusion.iou(), CLASSES)
    assert summary['miou'] == pytest.approx(100 * np.nanmean(theirs))
    assert summary['per_class_iou']['motorcycle'] is None


def test_confusion_matrix_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match='rescale'):
        ConfusionMatrix(19).update(torch.zeros(4, 4), torch.zeros(8, 8))


def test_synthia_subsets_by_hand():
    assert [CLASSES[c] for c in range(19) if c not in SYNTHIA16.subsets['miou16']] == [
        'terrain', 'truck', 'train']
    assert [CLASSES[c] for c in SYNTHIA16.subsets['miou16']
            if c not in SYNTHIA16.subsets['miou13']] == [
        'wall', 'fence', 'pole']
    iou = torch.full((19,), 0.5, dtype=torch.float64)
    iou[[9, 14, 16]] = 0.0                  # SYNTHIA has no terrain, truck, train
    iou[[3, 4, 5]] = 0.2
    summary = summarize_iou(iou, CLASSES, SYNTHIA16.subsets)
    # mIoU19 = (13·0.5 + 3·0.2 + 3·0) / 19; mIoU16 = (13·0.5 + 3·0.2) / 16; mIoU13 = 0.5
    assert summary['miou'] == pytest.approx(100 * 7.1 / 19)
    assert summary['miou16'] == pytest.approx(100 * 7.1 / 16)
    assert summary['miou13'] == pytest.approx(50.0)
    rows = dict(line.rsplit(maxsplit=1) for line in format_iou_table(summary).splitlines()[1:])
    rows = {k.strip(): v for k, v in rows.items()}
    assert (rows['mIoU19'], rows['mIoU16'], rows['mIoU13']) == ('37.37', '44.38', '50.00')
    assert rows['traffic light'] == '50.00' and rows['terrain'] == '0.00'


def test_the_evaluation_protocol_follows_the_labelled_training_set():
    def source(kind):
        return dict(data=dict(train=dict(type='UDADataset', source=dict(type=kind),
                                         target=dict(type='CityscapesDataset'))))
    assert evaluation_protocol(source('SynthiaDataset')) is SYNTHIA16
    assert evaluation_protocol(source('GTADataset')) is CITYSCAPES19
    assert evaluation_protocol(dict(data=dict(train=dict(type='SynthiaDataset')))) is SYNTHIA16
    assert evaluation_protocol(dict(data=dict(train=dict(type='CityscapesDataset')))) \
        is CITYSCAPES19
    assert evaluation_protocol(dict(evaluation=dict(synthia_subsets=False),
                                    **source('SynthiaDataset'))) is CITYSCAPES19
    assert SYNTHIA16.tail == (3, 6, 7, 12, 15, 17, 18) and CITYSCAPES19.headline == 'miou19'


@pytest.fixture(scope='module')
def val_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cityscapes'))
    cfg = write_cityscapes_like(root, num_images=3, size=(96, 192))
    dataset = build_dataset(dict(cfg, pipeline=test_pipeline((128, 64))),
                            dict(test_mode=True))
    loader = build_dataloader(dataset, samples_per_gpu=1, workers_per_gpu=0, dist=False,
                              shuffle=False, persistent_workers=False)
    torch.manual_seed(0)
    model = build_segmentor(tiny_model_cfg('daformer'))
    model.init_weights()
    return loader, model


def test_stream_evaluate_equals_mmseg_on_the_same_predictions(val_set):
    loader, model = val_set
    dataset = loader.dataset
    preds = single_gpu_test(MMDataParallel(model), loader, pre_eval=False)
    labels = [dataset.get_gt_seg_map_by_idx(i) for i in range(len(dataset))]
    assert preds[0].shape == labels[0].shape == (96, 192)   # rescaled to the original size
    assert len(np.unique(np.concatenate([p.ravel() for p in preds]))) > 1
    model.train()
    confusion = stream_evaluate(MMDataParallel(model), loader, progress=False)
    assert model.training  # the model's mode is restored
    _assert_same_iou(confusion.iou(), _mmseg_iou(preds, labels))
    assert confusion.matrix.sum() == sum(int((label != 255).sum()) for label in labels)


def test_eval_hook_logs_and_writes_final_metrics(val_set, tmp_path):
    loader, model = val_set
    logged = []
    runner = SimpleNamespace(
        model=MMDataParallel(model), iter=7, _max_iters=8, work_dir=str(tmp_path),
        log_buffer=SimpleNamespace(output={}, ready=False),
        logger=SimpleNamespace(info=logged.append))
    exp_meta = dict(exp=0, dataset='syn2cs', method='daformer')
    hook = StreamingEvalHook(loader, interval=100, class_subsets=SYNTHIA16.subsets,
                             exp_meta=exp_meta, progress=False)
    hook.after_train_iter(runner)  # the last iteration is always evaluated
    assert runner.log_buffer.ready
    output = runner.log_buffer.output
    assert {'mIoU', 'mIoU16', 'mIoU13', 'IoU.road'} <= set(output)
    assert 'mIoU19' in logged[0]
    runner.iter = 8
    hook.after_run(runner)
    with open(tmp_path / 'final_metrics.json') as f:
        record = json.load(f)
    assert record['exp_meta'] == exp_meta and record['iter'] == 8
    assert list(record['per_class_iou']) == list(CLASSES)
    assert record['miou'] == pytest.approx(100 * output['mIoU'])
    assert record['miou16'] == pytest.approx(100 * output['mIoU16'])
    assert not any(p.name.startswith('.') for p in tmp_path.iterdir())  # no temp file left


def test_show_dir_writes_one_colour_png_per_image(val_set, tmp_path):
    loader, model = val_set
    stream_evaluate(model, loader, show_dir=str(tmp_path), progress=False)
    written = sorted(p.name for p in (tmp_path / 'city').iterdir())
    assert written == [osp.basename(info['filename']) for info in loader.dataset.img_infos]
