"""Backbones: mmseg 0.30's MiT with SegFormer's LayerNorm eps (``MiTSegFormerNorms``)."""
from .mit import MiTSegFormerNorms

__all__ = ['MiTSegFormerNorms']
