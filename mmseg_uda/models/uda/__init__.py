"""UDA wrappers: DACS self-training, feature distance, ClassMix, EMA teacher."""
from .builder import UDA, build_train_model
from .dacs import DACS
from .source_only import SourceOnly
from .uda_wrapper import UDAWrapper

__all__ = ['UDA', 'build_train_model', 'DACS', 'SourceOnly', 'UDAWrapper']
