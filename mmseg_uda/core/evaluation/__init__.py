"""Streaming evaluation: a device-side confusion matrix, the mIoU summaries and the evaluation
protocols (mIoU19; SYNTHIA's mIoU16/13)."""
from .confusion import ConfusionMatrix, mean_iou
from .metrics import format_iou_table, summarize_iou
from .protocols import CITYSCAPES19, SYNTHIA16, EvalProtocol, evaluation_protocol
from .stream_eval import predict_logits, stream_evaluate, unwrap

__all__ = ['CITYSCAPES19', 'ConfusionMatrix', 'EvalProtocol', 'SYNTHIA16', 'evaluation_protocol',
           'format_iou_table', 'mean_iou', 'predict_logits', 'stream_evaluate', 'summarize_iou',
           'unwrap']
