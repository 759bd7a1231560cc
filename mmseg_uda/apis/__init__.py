"""Train/test wrappers that run on CPU, one GPU and DDP."""
from .test import load_student_checkpoint, student_state_dict, with_cross_entropy
from .train import build_val_dataloader, train_uda

__all__ = ['build_val_dataloader', 'train_uda', 'load_student_checkpoint',
           'student_state_dict', 'with_cross_entropy']
