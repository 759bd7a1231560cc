"""Training hooks: streaming evaluation with final_metrics.json, a progress bar, and the
unlabelled pass of paper Eq. 4."""
from .eval_hook import FINAL_METRICS, StreamingEvalHook, final_metrics_record
from .progress_hook import ProgressBarHook
from .pseudo_label_pass import UnlabelledPassHook

__all__ = ['FINAL_METRICS', 'StreamingEvalHook', 'final_metrics_record', 'ProgressBarHook',
           'UnlabelledPassHook']
