"""What an experiment is made of: runs' specs, tables of rows, experiments (frozen data).

An experiment is a set of tables; a table is a list of rows; a row is a `RunSpec` (data set,
method, backbone, BLV options). A row that several tables share (the DAFormer-R101 baseline
serves Tables 3, 6, 7 and 8) becomes ONE run whose ``exp_meta.tables`` lists every table
(`planning.plan`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _num(x: float) -> str:
    """6.0 -> '6', 0.5 -> '05': DAFormer's name style (dots removed)."""
    return f'{x:g}'.replace('.', '')


@dataclass(frozen=True)
class BLVSetting:
    """BLV options of one run; the fields are BLVLoss's constructor arguments."""
    sigma: float
    variation: str = 'gaussian'
    clip: float | None = 1.0
    balance: bool = True
    use_variation: bool = True

    def meta(self) -> dict[str, Any]:
        return dict(sigma=float(self.sigma), variation=self.variation,
                    clip=None if self.clip is None else float(self.clip),
                    balance=self.balance, use_variation=self.use_variation)

    def tag(self) -> str:
        """Name fragment. Sigma only shapes the gaussian, so other variations omit it."""
        tag = f'blv{_num(self.sigma)}' if self.variation == 'gaussian' else f'blv-{self.variation}'
        if self.clip != 1.0:
            tag += '-noclip' if self.clip is None else f'-clip{_num(self.clip)}'
        if not self.use_variation:
            tag += '-novar'
        if not self.balance:
            tag += '-nobal'
        return tag


@dataclass(frozen=True)
class RunSpec:
    """What distinguishes the runs of a table, seeds aside."""
    dataset: str
    method: str
    backbone: str
    blv: BLVSetting | None = None

    def meta(self) -> dict[str, Any]:
        return dict(dataset=self.dataset, method=self.method, backbone=self.backbone,
                    blv=None if self.blv is None else self.blv.meta())

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> RunSpec:
        """Inverse of `meta`: reads an ``exp_meta`` (extra keys such as seed are ignored)."""
        blv = meta.get('blv')
        return cls(dataset=meta['dataset'], method=meta['method'], backbone=meta['backbone'],
                   blv=None if blv is None else BLVSetting(**blv))

    def without_blv(self) -> RunSpec:
        return RunSpec(self.dataset, self.method, self.backbone)


@dataclass(frozen=True)
class TableRow:
    label: str
    spec: RunSpec
    # Path into paper_tables.json: a dict holding per_class_iou/miou19/miou16/miou13, or a
    # single headline mIoU (mIoU19 for GTA, mIoU16 for SYNTHIA). None: no paper number.
    paper: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Table:
    id: int | str
    title: str
    # 'per_class': Tables 3/4 (per-class IoU, mIoU19/16/13, tail mIoU). 'summary': headline
    # mIoU and the gain over the same data set's row without BLV (Tables 6/7/8).
    kind: str
    rows: tuple[TableRow, ...]


@dataclass(frozen=True)
class Run:
    """One training run: a spec, a seed, the tables it serves and its (stable) name."""
    exp: int
    spec: RunSpec
    seed: int
    tables: tuple[int | str, ...]
    name: str

    def exp_meta(self) -> dict[str, Any]:
        return dict(exp=self.exp, tables=list(self.tables), **self.spec.meta(), seed=self.seed)



@dataclass(frozen=True)
class Experiment:
    id: int
    title: str
    tables: tuple[Table, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    overrides: dict = field(default_factory=dict)  # merged after the recipes: scale knobs
    method_overrides: dict = field(default_factory=dict)  # method id -> overrides for it only
    data_root: str | None = None    # replaces the 'data/' parent of every data_root
    # Image sizes: keyword arguments of mmseg_uda.datasets.scale_pipelines (source_scale,
    # target_scale, crop_size, test_scale); None keeps the data set's.
    pipeline_sizes: dict | None = None
    # The data's linear size vs the real sets' (adapt_to_data_scale).
    data_scale: float | None = None

