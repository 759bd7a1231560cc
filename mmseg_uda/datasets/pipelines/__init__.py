from .pseudo_margins import FormatValidPseudoMask, pseudo_margin_mask

__all__ = ['FormatValidPseudoMask', 'pseudo_margin_mask']
