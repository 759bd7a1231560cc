"""Models: DAFormer head, DeepLabV2 head, HRDA encoder-decoder and head, UDA wrappers."""
from . import uda  # noqa: F401
