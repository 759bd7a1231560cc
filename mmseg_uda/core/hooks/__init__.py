"""Training hooks: streaming evaluation with final_metrics.json, and a progress bar."""
from .eval_hook import FINAL_METRICS, StreamingEvalHook, final_metrics_record
from .progress_hook import ProgressBarHook

__all__ = ['FINAL_METRICS', 'StreamingEvalHook', 'final_metrics_record', 'ProgressBarHook']
