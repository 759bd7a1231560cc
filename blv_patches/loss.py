"""BLVLoss: cross entropy on logits perturbed by balanced logit variation (paper Eq. 3)."""
from __future__ import annotations

import inspect

import numpy as np
import torch
from mmseg.models.builder import LOSSES

from .class_frequency import ClassCounts, class_scale, load_class_counts
from .count_loss import ClassCountCrossEntropy
from .variation import GAUSSIAN_SAMPLERS, VARIATIONS, sample_variation


@LOSSES.register_module()
class BLVLoss(ClassCountCrossEntropy):
    """ẑ_k = z_k + (c_k / max_i c_i)·|δ(σ)| in training, plain cross entropy in eval.

    The reduction is mmseg's ``CrossEntropyLoss`` one (pixel mean over all pixels, ignored
    ones included, unless ``avg_non_ignore``), so BLV numbers stay comparable to DAFormer's.

    Args:
        class_counts: C class pixel counts, or a path to a converter's
            ``sample_class_stats.json`` (read when the loss is built).
        sigma: standard deviation of the gaussian variation.
        variation: 'gaussian', 'uniform', 'beta' or 'exponential'.
        clip: upper bound of |δ|; None for no clipping.
        balance: False replaces c_k / max c by 1 (the "w/o balance" ablation).
        use_variation: False replaces |δ| by 1 (the "w/o variation" ablation).
        scale_formula: 'paper' (Eq. 3) or 'released_v1' (c_k = log(max q / q_k)).
        gaussian_sampler: how the clipped gaussian is drawn, 'randn' or 'inverse_cdf' (both
            exact; ``blv_patches.variation.GAUSSIAN_SAMPLERS``).
        num_classes: label-space size for a stats file (default 19).
    """

    def __init__(self, class_counts: ClassCounts, sigma: float = 4.0,
                 variation: str = 'gaussian', clip: float | None = 1.0, balance: bool = True,
                 use_variation: bool = True, loss_weight: float = 1.0,
                 loss_name: str = 'loss_blv', scale_formula: str = 'paper',
                 num_classes: int | None = None, class_weight: list[float] | None = None,
                 avg_non_ignore: bool = False, gaussian_sampler: str = 'randn') -> None:
        super().__init__(loss_name, loss_weight, class_weight, avg_non_ignore)
        if variation not in VARIATIONS:
            raise ValueError(f'BLVLoss: unknown variation {variation!r}; choose one of '
                             f'{VARIATIONS}')
        if variation == 'gaussian' and sigma <= 0:
            raise ValueError(f'BLVLoss: sigma must be positive, got {sigma}')
        self.sigma = float(sigma)
        self.variation = variation
        self.clip = clip
        self.balance = balance
        self.use_variation = use_variation
        self.scale_formula = scale_formula
        if gaussian_sampler not in GAUSSIAN_SAMPLERS:
            raise ValueError(f'BLVLoss: unknown gaussian_sampler {gaussian_sampler!r}; choose '
                             f'one of {GAUSSIAN_SAMPLERS}')
        self.gaussian_sampler = gaussian_sampler
        counts = load_class_counts(class_counts, num_classes)
        self.register_buffer('class_counts', torch.as_tensor(counts, dtype=torch.float64))
        self.register_buffer('class_scale', torch.as_tensor(
            class_scale(counts, scale_formula), dtype=torch.float32))

    @property
    def num_classes(self) -> int:
        return self.class_scale.numel()

    @torch.no_grad()
    def set_class_counts(self, counts: ClassCounts) -> None:
        """Replace the class counts, e.g. by pseudo-label estimates (paper Eq. 4)."""
        counts = load_class_counts(counts, self.num_classes)
        self.class_counts.copy_(torch.as_tensor(counts, dtype=torch.float64))
        self.class_scale.copy_(torch.as_tensor(class_scale(counts, self.scale_formula)))

    def offset_scale(self) -> torch.Tensor:
        """The per-class factor in front of |δ|: class_scale, or 1 without balance."""
        return self.class_scale if self.balance else torch.ones_like(self.class_scale)

    def perturb(self, logits: torch.Tensor) -> torch.Tensor:
        """Training-time logits: z + scale_k·|δ|, |δ| drawn independently per element."""
        self.check_logits(logits, self.num_classes, 'BLVLoss')
        # The loss and its noise stay in fp32 under autocast.
        logits = logits.float()
        scale = self.offset_scale().view(1, -1, *([1] * (logits.dim() - 2)))
        if not self.use_variation:
            return logits + scale  # one constant offset per class
        noise = sample_variation(self.variation, logits.shape, sigma=self.sigma,
                                 clip=self.clip, device=logits.device,
                                 gaussian_sampler=self.gaussian_sampler)
        # In place into the fresh noise buffer: saves allocating and filling another
        # logits-sized tensor; the gradient still flows to ``logits`` unchanged.
        return noise.mul_(scale).add_(logits)

    def training_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return self.perturb(logits)

    def extra_repr(self) -> str:
        return (f'variation={self.variation}, sigma={self.sigma}, clip={self.clip}, '
                f'balance={self.balance}, use_variation={self.use_variation}, '
                f'scale_formula={self.scale_formula}, '
                f'class_scale={np.round(self.class_scale.tolist(), 3).tolist()}')


BLV_OPTIONS = frozenset(inspect.signature(BLVLoss.__init__).parameters) - {'self', 'class_counts'}
