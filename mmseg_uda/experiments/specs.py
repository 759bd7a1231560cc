"""What an experiment is made of: runs' specs, tables of rows, experiments (frozen data).

An experiment is a set of tables; a table is a list of rows; a row is a `RunSpec` (data set,
method, backbone, segmentation loss). A row that several tables share (the DAFormer-R101 baseline
serves Tables 3, 6, 7 and 8) becomes ONE run whose ``exp_meta.tables`` lists every table
(`planning.plan`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .losses import CE, BLVSetting, LossSetting, loss_from_meta, loss_meta

DEFAULT_PARTITION_SOURCE = 'seed0'


@dataclass(frozen=True)
class RunSpec:
    """What distinguishes the runs of a table, seeds aside: the data set, the method, the
    backbone, the segmentation loss, and the data-side resampling baseline (``sampling='rs'``,
    experiment 41), if any."""
    dataset: str
    method: str
    backbone: str
    loss: LossSetting = CE
    sampling: str | None = None

    @property
    def blv(self) -> BLVSetting | None:
        """BLV's options when the loss is BLV (exp_meta's ``blv`` key)."""
        return self.loss if isinstance(self.loss, BLVSetting) else None

    def meta(self) -> dict[str, Any]:
        meta = dict(dataset=self.dataset, method=self.method, backbone=self.backbone,
                    blv=None if self.blv is None else self.blv.meta(), loss=loss_meta(self.loss))
        if self.sampling is not None:
            meta['sampling'] = self.sampling
        return meta

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> RunSpec:
        """Inverse of `meta`: reads an ``exp_meta`` (extra keys such as seed are ignored)."""
        return cls(dataset=meta['dataset'], method=meta['method'], backbone=meta['backbone'],
                   loss=loss_from_meta(meta), sampling=meta.get('sampling'))

    def baseline(self) -> RunSpec:
        """The same row with cross entropy and no resampling: what a loss's gain is against."""
        return RunSpec(self.dataset, self.method, self.backbone)


@dataclass(frozen=True)
class TableRow:
    label: str
    spec: RunSpec
    # Path into paper_tables.json: a dict holding per_class_iou/miou19/miou16/miou13, or a
    # single headline mIoU (mIoU19 for GTA, mIoU16 for SYNTHIA). None: no paper number.
    paper: tuple[str, ...] | None = None
    # The label of the row of the same table this one is paired against in the analysis, in
    # place of its cross-entropy baseline (experiment 3: self-training vs labelled-only).
    versus: str | None = None


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
class WarmStart:
    """A run whose trained segmentor every run of an experiment starts from, whatever its
    seed: the CPU experiments' stand-in for the ImageNet weights the paper's models start from.
    It trains ``spec`` (a data set none of the rows trains or tests on) with ``overrides``
    merged over the experiment's, once, with seed ``seed``."""
    spec: RunSpec
    overrides: dict = field(default_factory=dict)
    seed: int = 0


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
    # Experiments whose runs serve this one's rows of the same spec: those rows are not run
    # again (`planning.plan` leaves them out) and the analysis reads their results.
    shares_runs_of: tuple[Experiment, ...] = ()
    # Semi-supervised partitions, by labelled fraction: drawn from seed 0 ('seed0', the
    # default), or a published list ('file-<sha>', run_experiments.py --split-file); see
    # mmseg_uda.datasets.partitions.
    partition_sources: dict = field(default_factory=dict)
    # Semi-supervised schedule: keyword arguments of recipes.semi_epoch_iters (num_images,
    # batch) plus 'epochs'; None: the paper's (U2PL's 200 epochs of Cityscapes at batch 16).
    semi_schedule: dict | None = None
    # The run every run of this experiment starts from (`planning.warm_start_run`), if any.
    warm_start: WarmStart | None = None
    # Or another experiment whose warm start this one's runs start from: that experiment's run,
    # built by it (its name, data, sizes and config), so one run serves both in a shared work
    # root.
    warm_start_of: Experiment | None = None

    def partition_source(self, labelled_fraction: int) -> str:
        return self.partition_sources.get(labelled_fraction, DEFAULT_PARTITION_SOURCE)

    def shared_spec_owner(self, spec: RunSpec) -> int | None:
        """The id of the experiment whose run serves ``spec``, if not this one."""
        for other in self.shares_runs_of:
            if any(row.spec == spec for table in other.tables for row in table.rows):
                return other.id
        return None

