"""Stop training at the first NaN or inf loss, naming the loss term and the iteration.

No silent skipping: an update computed from a non-finite loss would poison the student, the
EMA teacher and the optimizer moments. The runner (``ResumableIterBasedRunner``) catches
:class:`NonFiniteLossError`, saves the last good state, and re-raises.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch


class NonFiniteLossError(FloatingPointError):
    """A loss term was NaN or inf at ``iteration`` (0-based, the iteration being computed)."""

    def __init__(self, term: str, value: float, iteration: int) -> None:
        self.term, self.value, self.iteration = term, value, iteration
        super().__init__(
            f'Loss term {term!r} is {value} at iteration {iteration}. Training stopped before '
            'the optimizer step, so the weights are still finite; the last good state is saved '
            'in the work dir. Common causes: a learning rate too high for the batch, fp16 '
            'without loss scaling, or broken labels (a NaN in decode.loss_seg usually means '
            'a broken data setup).')


def check_finite_losses(losses: Mapping[str, float | torch.Tensor], iteration: int,
                        on_nonfinite: Callable[[NonFiniteLossError], None] | None = None) -> None:
    """Raise :class:`NonFiniteLossError` for the first non-finite entry of ``losses``.

    ``losses`` maps names to floats or tensors (every element is checked). ``on_nonfinite`` is
    called with the error before it is raised, e.g. to save the last good state.

    In distributed training, pass values that were already averaged over ranks (mmseg's
    ``_parse_losses`` does this), so that every rank stops at the same iteration.
    """
    for term, value in losses.items():
        if isinstance(value, torch.Tensor):
            if bool(torch.isfinite(value.detach()).all()):
                continue
            scalar = value.detach().float().sum().item()  # nan or inf, for the message
        else:
            scalar = float(value)
            if math.isfinite(scalar):
                continue
        error = NonFiniteLossError(term, scalar, iteration)
        if on_nonfinite is not None:
            on_nonfinite(error)
        raise error
