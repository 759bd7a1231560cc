"""Models: DAFormer head, DeepLabV2 head, HRDA encoder-decoder and head, UDA wrappers.

Importing registers ``MiTSegFormerNorms`` (BACKBONES),
``DAFormerHead``, ``DLV2Head``, ``HRDAHead`` (HEADS) and
``UDAEncoderDecoder``, ``HRDAEncoderDecoder`` (SEGMENTORS) in mmseg's registries.
"""
from . import backbones, decode_heads, segmentors  # noqa: F401,I001  (registration side effects)
from . import uda  # noqa: F401
from .pretrained import LoadReport, convert_mit, convert_resnet, load_pretrained

__all__ = ['LoadReport', 'convert_mit', 'convert_resnet', 'load_pretrained']
