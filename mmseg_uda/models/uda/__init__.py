"""UDA wrappers: DACS, semi-supervised self-training, source-only; feature distance, ClassMix,
EMA teacher."""
from blv_patches import PseudoLabelClassFrequency

from .builder import PSEUDO_LABEL_OBSERVERS, UDA, build_train_model
from .dacs import DACS
from .self_training import SelfTraining
from .source_only import SourceOnly
from .teacher_student import TeacherStudent
from .uda_wrapper import UDAWrapper

PSEUDO_LABEL_OBSERVERS.register_module(module=PseudoLabelClassFrequency)  # paper Eq. 4

__all__ = ['PSEUDO_LABEL_OBSERVERS', 'UDA', 'build_train_model', 'DACS', 'SelfTraining',
           'SourceOnly', 'TeacherStudent', 'UDAWrapper']
