"""Segmentors with DAFormer's UDA interface (seg_weight, return_feat, pretrained files)."""
from .hrda_encoder_decoder import HRDAEncoderDecoder
from .uda_encoder_decoder import UDAEncoderDecoder

__all__ = ['HRDAEncoderDecoder', 'UDAEncoderDecoder']
