from .checked_loading import CorruptFileError
from .pseudo_margins import FormatValidPseudoMask, pseudo_margin_mask

__all__ = ['CorruptFileError', 'FormatValidPseudoMask', 'pseudo_margin_mask']
