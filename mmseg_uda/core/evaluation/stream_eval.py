"""Evaluate a segmentor over a data loader into a device-side confusion matrix."""
from __future__ import annotations

import os.path as osp
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import ContextManager

import mmcv
import numpy as np
import torch
import torch.nn as nn
from mmcv.parallel import is_module_wrapper, scatter
from tqdm import tqdm

from .confusion import ConfusionMatrix


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside (MM)DataParallel / DistributedDataParallel."""
    return model.module if is_module_wrapper(model) else model


def scatter_target(device: torch.device) -> int:
    """mmcv's scatter target: -1 for the CPU, else the CUDA device index."""
    if device.type == 'cpu':
        return -1
    return device.index if device.index is not None else torch.cuda.current_device()


def predict_logits(segmentor: nn.Module, imgs: list[torch.Tensor],
                   img_metas: list[list[dict]]) -> torch.Tensor:
    """Test-time logits at the original image size, averaged over the test augmentations
    (mmseg's ``simple_test``/``aug_test`` without the copy of the prediction to the host)."""
    logits = segmentor.inference(imgs[0], img_metas[0], rescale=True)
    for img, meta in zip(imgs[1:], img_metas[1:]):
        logits = logits + segmentor.inference(img, meta, rescale=True)
    return logits / len(imgs)


def ground_truth(dataset, index: int, device: torch.device) -> torch.Tensor:
    """The evaluation label map of one image, as mmseg's ``pre_eval`` sees it."""
    gt = torch.from_numpy(np.asarray(dataset.get_gt_seg_map_by_idx(index), dtype=np.int64))
    gt = gt.to(device)
    if getattr(dataset, 'reduce_zero_label', False):
        gt = torch.where(gt == 0, 255, gt - 1).masked_fill(gt == 255, 255)
    return gt


def save_prediction(pred: torch.Tensor, palette, path: str) -> None:
    """A colour PNG of one prediction (only for --show-dir: copies the map to the host)."""
    pred = pred.cpu().numpy()
    rgb = np.zeros((*pred.shape, 3), dtype=np.uint8)
    palette = np.asarray(palette, dtype=np.uint8)
    rgb[pred < len(palette)] = palette[pred[pred < len(palette)]]
    mmcv.imwrite(rgb[..., ::-1], path)  # mmcv writes BGR


@torch.no_grad()
def predictions(segmentor: nn.Module, data_loader, progress: bool = True, desc: str = 'eval',
                autocast: Callable[[], ContextManager] = nullcontext
                ) -> Iterator[tuple[list[int], torch.Tensor, list[dict]]]:
    """(data-set indices, arg-max predictions B×H×W, image metas) of every batch of
    ``data_loader``, with ``segmentor`` in eval mode (its mode is given back afterwards) and its
    forward passes inside ``autocast()``. Predictions stay on the device."""
    was_training = segmentor.training
    segmentor.eval()
    device = next(segmentor.parameters()).device
    batches = zip(data_loader.batch_sampler, data_loader)
    if progress:
        batches = tqdm(batches, total=len(data_loader), desc=desc, unit='img', leave=False,
                       dynamic_ncols=True)
    try:
        for indices, data in batches:
            data = scatter(data, [scatter_target(device)])[0]
            with autocast():
                preds = predict_logits(segmentor, data['img'], data['img_metas']).argmax(dim=1)
            yield indices, preds, data['img_metas'][0]
    finally:
        segmentor.train(was_training)


@torch.no_grad()
def stream_evaluate(model: nn.Module, data_loader, show_dir: str | None = None,
                    progress: bool = True) -> ConfusionMatrix:
    """Predict every image of ``data_loader`` and accumulate a C×C confusion matrix.

    Predictions never leave the device (unless ``show_dir`` asks for images), and memory stays
    flat however many images there are. ``data_loader`` must iterate its data set in order
    without padding (mmseg's ``build_dataloader(..., dist=False, shuffle=False)``).
    """
    segmentor = unwrap(model)
    device = next(segmentor.parameters()).device
    dataset = data_loader.dataset
    confusion = ConfusionMatrix(len(dataset.CLASSES), dataset.ignore_index, device)
    for indices, preds, metas in predictions(segmentor, data_loader, progress):
        for pred, index, meta in zip(preds, indices, metas):
            confusion.update(pred, ground_truth(dataset, index, device))
            if show_dir is not None:
                save_prediction(pred, dataset.PALETTE, osp.join(show_dir, meta['ori_filename']))
    return confusion
