"""Streaming evaluation: a device-side confusion matrix, mIoU19 and the SYNTHIA subsets."""
from .confusion import ConfusionMatrix, mean_iou
from .metrics import (
                      MIOU13_CLASSES,
                      MIOU16_CLASSES,
                      SYNTHIA_SUBSETS,
                      format_iou_table,
                      summarize_iou,
                      uses_synthia_subsets,
)
from .stream_eval import predict_logits, stream_evaluate, unwrap

__all__ = ['ConfusionMatrix', 'mean_iou', 'MIOU13_CLASSES', 'MIOU16_CLASSES', 'SYNTHIA_SUBSETS',
           'format_iou_table', 'summarize_iou', 'uses_synthia_subsets', 'predict_logits',
           'stream_evaluate', 'unwrap']
