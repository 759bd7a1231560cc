"""UDA wrappers: DACS self-training, feature distance, ClassMix, EMA teacher."""
from blv_patches import PseudoLabelClassFrequency

from .builder import PSEUDO_LABEL_OBSERVERS, UDA, build_train_model
from .dacs import DACS
from .source_only import SourceOnly
from .uda_wrapper import UDAWrapper

PSEUDO_LABEL_OBSERVERS.register_module(module=PseudoLabelClassFrequency)  # paper Eq. 4

__all__ = ['PSEUDO_LABEL_OBSERVERS', 'UDA', 'build_train_model', 'DACS', 'SourceOnly', 'UDAWrapper']
