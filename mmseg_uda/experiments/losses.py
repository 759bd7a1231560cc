"""The loss axis of the experiment grid: each row trains with one segmentation loss.

A setting names its loss kind (``kind``), its options (``meta``: the exp_meta ``loss`` record
is ``{type: kind, **meta}``), its name fragment (``tag``) and how it rewrites a config
(``apply``: every decode head's cross entropy becomes the loss, with the source's class counts).
Cross entropy is the baseline of every other loss on the same row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from blv_patches import apply_blv, apply_loss, replace_cross_entropy
from blv_patches.class_frequency import RELEASED_CONFIG_COUNTS


def _num(x: float) -> str:
    """6.0 -> '6', 0.5 -> '05': DAFormer's name style (dots removed)."""
    return f'{x:g}'.replace('.', '')


@dataclass(frozen=True)
class CESetting:
    """mmseg's cross entropy, as the base configs have it."""
    kind: ClassVar[str] = 'ce'

    def meta(self) -> dict[str, Any]:
        return {}

    def tag(self) -> str | None:
        return None

    def apply(self, cfg: dict, class_counts: str) -> dict:
        return cfg


# Where BLV's class counts come from: the data set's sample_class_stats.json, or the list in
# every released BLV config (blv_patches.RELEASED_CONFIG_COUNTS, GTA5's with a digit dropped).
BLV_COUNTS = ('data', 'released')


@dataclass(frozen=True)
class BLVSetting:
    """BLV options of one run; the fields but ``counts`` are BLVLoss's constructor arguments."""
    kind: ClassVar[str] = 'blv'
    sigma: float
    variation: str = 'gaussian'
    clip: float | None = 1.0
    balance: bool = True
    use_variation: bool = True
    counts: str = 'data'

    def __post_init__(self) -> None:
        if self.counts not in BLV_COUNTS:
            raise ValueError(f'BLVSetting.counts={self.counts!r}; choose one of {BLV_COUNTS}')

    def meta(self) -> dict[str, Any]:
        meta = dict(sigma=float(self.sigma), variation=self.variation,
                    clip=None if self.clip is None else float(self.clip),
                    balance=self.balance, use_variation=self.use_variation)
        if self.counts != 'data':  # the exp_meta records of existing runs stay as they were
            meta['counts'] = self.counts
        return meta

    def tag(self) -> str:
        """Name fragment. Sigma only shapes the gaussian, so other variations omit it."""
        tag = f'blv{_num(self.sigma)}' if self.variation == 'gaussian' else f'blv-{self.variation}'
        if self.clip != 1.0:
            tag += '-noclip' if self.clip is None else f'-clip{_num(self.clip)}'
        if not self.use_variation:
            tag += '-novar'
        if not self.balance:
            tag += '-nobal'
        if self.counts != 'data':
            tag += f'-{self.counts}counts'
        return tag

    def apply(self, cfg: dict, class_counts: str) -> dict:
        options = self.meta()
        options.pop('counts', None)
        if self.counts == 'released':
            class_counts = list(RELEASED_CONFIG_COUNTS)
        return apply_blv(cfg, class_counts, **options)


@dataclass(frozen=True)
class LASetting:
    """Logit adjustment (Menon et al., ICLR 2021), the ``LogitAdjustedLoss``."""
    kind: ClassVar[str] = 'la'
    tau: float = 1.0

    def meta(self) -> dict[str, Any]:
        return dict(tau=float(self.tau))

    def tag(self) -> str:
        return 'la' if self.tau == 1.0 else f'la{_num(self.tau)}'

    def apply(self, cfg: dict, class_counts: str) -> dict:
        return apply_loss(cfg, 'LogitAdjustedLoss', class_counts, tau=float(self.tau))


@dataclass(frozen=True)
class RWSetting:
    """Class reweighting, the ``ReweightedCELoss`` (scheme: 'inverse_sqrt' or 'inverse')."""
    kind: ClassVar[str] = 'rw'
    scheme: str = 'inverse_sqrt'

    def meta(self) -> dict[str, Any]:
        return dict(scheme=self.scheme)

    def tag(self) -> str:
        return 'rw' if self.scheme == 'inverse_sqrt' else f'rw-{self.scheme}'

    def apply(self, cfg: dict, class_counts: str) -> dict:
        return apply_loss(cfg, 'ReweightedCELoss', class_counts, scheme=self.scheme)


# Methods whose loss weights pseudo-labelled pixels: a loss without per-pixel weights cannot
# serve them.
PIXEL_WEIGHTED_METHODS = ('DACS', 'SelfTraining')


@dataclass(frozen=True)
class LovaszSetting:
    """mmseg's Lovász-softmax loss (Berman et al., CVPR 2018) in place of cross entropy: the
    paper's fully supervised Table 5 baseline, which names no options; these are mmseg's
    defaults (the mean over the classes present in the batch, computed over the whole batch)."""
    kind: ClassVar[str] = 'lovasz'
    per_image: bool = False

    def meta(self) -> dict[str, Any]:
        return dict(per_image=self.per_image)

    def tag(self) -> str:
        return 'lovasz' if not self.per_image else 'lovasz-perimage'

    def apply(self, cfg: dict, class_counts: str) -> dict:
        uda = (cfg.get('uda') or {}).get('type')
        if uda in PIXEL_WEIGHTED_METHODS:
            raise ValueError(f'the Lovász loss has no per-pixel weights, which {uda} gives its '
                             'pseudo-labels; use it for supervised training only')
        # mmseg's LovaszLoss asks for reduction='none' when it is not per image.
        return replace_cross_entropy(cfg, dict(
            type='LovaszLoss', loss_type='multi_class', classes='present',
            per_image=self.per_image, reduction='mean' if self.per_image else 'none',
            loss_name='loss_lovasz'))


LossSetting = CESetting | BLVSetting | LASetting | RWSetting | LovaszSetting
LOSS_KINDS: dict[str, type] = {cls.kind: cls for cls in (CESetting, BLVSetting, LASetting,
                                                          RWSetting, LovaszSetting)}
CE = CESetting()


def loss_meta(loss: LossSetting) -> dict[str, Any]:
    """The exp_meta ``loss`` record: ``{type: kind, **options}``."""
    return dict(type=loss.kind, **loss.meta())


def loss_from_meta(exp_meta: dict[str, Any]) -> LossSetting:
    """The loss of an ``exp_meta``: its ``loss`` record, or for records written before the loss
    axis existed, its ``blv`` (null: cross entropy)."""
    record = exp_meta.get('loss')
    if record is None:
        blv = exp_meta.get('blv')
        return CE if blv is None else BLVSetting(**blv)
    options = dict(record)
    kind = options.pop('type')
    if kind not in LOSS_KINDS:
        raise ValueError(f'exp_meta.loss.type={kind!r}: not a loss of the experiment grid; '
                         f'known: {sorted(LOSS_KINDS)}')
    return LOSS_KINDS[kind](**options)
