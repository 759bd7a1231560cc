"""The experiment tables as data: experiment id -> runs -> fully resolved configs.

An experiment is a set of tables; a table is a list of rows; a row is a `RunSpec` (data set,
method, backbone, BLV options). A row that several tables share (the DAFormer-R101 baseline
serves Tables 3, 6, 7 and 8) becomes ONE run whose ``exp_meta.tables`` lists every table.

A run becomes a config by composing the ``_base_`` files of its data set, architecture and
method with mmcv's own ``_base_`` mechanism and merging, in this order, the architecture's and
the method's overrides, the experiment's overrides (its schedule and scale), the run's identity
(seed, name, work dir, exp_meta). BLV is then wired in with ``blv_patches.apply_blv``,
pointing at the source data set's ``sample_class_stats.json``. The result is a plain,
self-contained dict, written as JSON.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcv import Config

from blv_patches import apply_blv
from blv_patches.class_frequency import STATS_FILE

from .datasets import scale_pipelines

REPO_ROOT = Path(__file__).resolve().parents[1]
BASE_DIR = REPO_ROOT / 'configs' / '_base_'
GENERATED_DIR = REPO_ROOT / 'configs' / 'generated'
WORK_DIRS = Path('work_dirs')  # relative to the repository root, where runs execute


def merged(*parts: dict) -> dict:
    """Deep-merge config fragments left to right with mmcv's rules (``_delete_`` included)."""
    out: dict = {}
    for part in parts:
        out = Config._merge_a_into_b(copy.deepcopy(part), out)
    return out


def _num(x: float) -> str:
    """6.0 -> '6', 0.5 -> '05': DAFormer's name style (dots removed)."""
    return f'{x:g}'.replace('.', '')


# ----------------------------------------------------------------------------- runs


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


# ----------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class DatasetRecipe:
    name: str          # name prefix, DAFormer style; HR runs use hr_name
    hr_name: str
    base: str          # datasets/ base at DAFormer resolution (512x512 crops)
    hr_base: str       # datasets/ base at HRDA resolution (1024x1024 crops)
    blv_sigma: float   # the paper's sigma for this source (Table 7's best)


@dataclass(frozen=True)
class ArchRecipe:
    name: str
    base: str                   # models/ base
    hrda_name: str | None       # HRDA wrapper around the same network: name and models/ base
    hrda_base: str | None
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodRecipe:
    uda_base: str               # uda/ base
    high_res: bool              # HRDA: HR data sets and the HRDA model wrapper
    name_parts: tuple[str, ...]
    overrides: dict = field(default_factory=dict)


DATASETS: dict[str, DatasetRecipe] = {
    'gta2cs': DatasetRecipe('gta2cs', 'gtaHR2csHR', 'uda_gta_to_cityscapes_512x512.py',
                            'uda_gtaHR_to_cityscapesHR_1024x1024.py', blv_sigma=6.0),
    'syn2cs': DatasetRecipe('syn2cs', 'synHR2csHR', 'uda_synthia_to_cityscapes_512x512.py',
                            'uda_synthiaHR_to_cityscapesHR_1024x1024.py', blv_sigma=4.0),
}

# schedules/adamw.py trains the decode head(s) at 10x the encoder's lr (DAFormer's
# configs/_base_/schedules/adamw.py, lhoyer/DAFormer e6f6e041). MiT also
# exempts its position blocks and norms from weight decay; ResNet does not (BN weights decay).
_MIT_PARAMWISE = dict(optimizer=dict(paramwise_cfg=dict(custom_keys=dict(
    pos_block=dict(decay_mult=0.0), norm=dict(decay_mult=0.0)))))

ARCHS: dict[str, ArchRecipe] = {
    'r101': ArchRecipe('dlv2red_r101v1c', 'deeplabv2red_r101v1c.py', None, None),
    'mitb5': ArchRecipe('daformer_sepaspp_mitb5', 'daformer_sepaspp_mitb5.py',
                        'hrda1-512-01_daformer_sepaspp_sl_mitb5',
                        'hrda_daformer_sepaspp_mitb5.py', _MIT_PARAMWISE),
    # Experiment 0's CPU-sized DAFormer: MiT-B0 widths, one block per stage, random init.
    'tiny_mitb0': ArchRecipe('tiny_daformer_mitb0', 'tiny_daformer_mitb0.py',
                             'tiny_hrda_daformer_mitb0', 'tiny_hrda_daformer_mitb0.py',
                             _MIT_PARAMWISE),
    # The DeepLabV2 counterpart at CPU size (ResNet-18-V1c): tools/gpu_check.py's reduced mode.
    'tiny_r18': ArchRecipe('tiny_dlv2red_r18v1c', 'tiny_deeplabv2red_r18v1c.py', None, None),
}


def _rcs(min_crop_ratio: float) -> dict:
    return dict(data=dict(train=dict(rare_class_sampling=dict(
        min_pixels=3000, class_temp=0.01, min_crop_ratio=min_crop_ratio))))


# Pseudo-label margins: v1 zeroes the top 15 / bottom 120 rows of the target crop (DAFormer);
# v2 is the data set's mask of [top, bottom, left, right] margins in 2048x1024 pixels (HRDA).
_PLCROP_V1 = dict(uda=dict(pseudo_weight_ignore_top=15, pseudo_weight_ignore_bottom=120))
_PLCROP_V2 = dict(data=dict(train=dict(target=dict(crop_pseudo_margins=[30, 240, 30, 30]))))

METHODS: dict[str, MethodRecipe] = {
    # Source-only: DAFormer exp 1's recipe (the same optimiser and schedule, no RCS).
    'source_only': MethodRecipe('source_only.py', False, ('source-only',)),
    'daformer': MethodRecipe('dacs_a999_fdthings.py', False,
                             ('dacs_a999_fdthings', 'rcs001-05', 'cpl'),
                             merged(_rcs(0.5), _PLCROP_V1)),
    # DAFormer's recipe on plain DACS (alpha 0.99, no ImageNet feature distance): experiment 0,
    # whose random-init tiny model has no ImageNet features, and whose 800 iterations are shorter
    # than the ~1000 that alpha=0.999 averages the teacher over.
    'dacs': MethodRecipe('dacs.py', False, ('dacs', 'rcs001-05', 'cpl'),
                         merged(_rcs(0.5), _PLCROP_V1)),
    'hrda': MethodRecipe('dacs_a999_fdthings.py', True,
                         ('dacs_a999_fdthings', 'rcs001-20', 'cpl2'),
                         merged(_rcs(2.0), _PLCROP_V2)),
}

# The paper's schedule (DAFormer's poly10warm, lhoyer/DAFormer e6f6e041) is
# schedules/poly10warm.py: 40k iterations, evaluation every 4k. DAFormer keeps only the final
# checkpoint; one at every evaluation lets a pre-empted run resume, and poly10warm.py's
# max_keep_ckpts=2 keeps the newest two (one spare if the newest is cut by a crash).
PAPER_SCHEDULE = dict(checkpoint_config=dict(interval=4000))
SCHEDULE_NAME = 'poly10warm'
COMMON_BASES = ('schedules/adamw.py', 'schedules/poly10warm.py', 'default_runtime.py')

# GPU-hours per 40k-iteration run on the GPUs reported in lhoyer/HRDA#14: DAFormer-MiT-B5 16 h on an
# RTX 2080 Ti, HRDA 32 h on a Titan RTX. DLv2-R101 is not reported: we assume DAFormer's cost;
# source-only skips the teacher, ImageNet and mixed passes (3 of 8 forward-equivalents).
GPU_HOURS = {
    ('source_only', 'r101'): 6.0,
    ('daformer', 'r101'): 16.0,
    ('daformer', 'mitb5'): 16.0,
    ('hrda', 'mitb5'): 32.0,
}


# ----------------------------------------------------------------------------- experiments


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


def _row(label: str, dataset: str, method: str, backbone: str, blv: BLVSetting | None = None,
         paper: tuple[str, ...] | None = None) -> TableRow:
    return TableRow(label, RunSpec(dataset, method, backbone, blv), paper)


def _main_table(table_id: int, dataset: str, paper_key: str, title: str) -> Table:
    """Tables 3 and 4: source-only, DAFormer-R101, DAFormer-MiT-B5, HRDA, each +-BLV."""
    blv = BLVSetting(sigma=DATASETS[dataset].blv_sigma)
    rows = (
        ('source only† (R101)', 'source_only', 'r101', None, 'source_only_r101_dlv2'),
        ('DAFormer† (R101)', 'daformer', 'r101', None, 'daformer_r101_dlv2'),
        ('DAFormer† (R101) w/ BLV', 'daformer', 'r101', blv, 'daformer_r101_dlv2_blv'),
        ('DAFormer‡ (MiT-B5)', 'daformer', 'mitb5', None, 'daformer_mitb5'),
        ('DAFormer‡ (MiT-B5) w/ BLV', 'daformer', 'mitb5', blv, 'daformer_mitb5_blv'),
        ('HRDA‡ (MiT-B5)', 'hrda', 'mitb5', None, 'hrda_mitb5'),
        ('HRDA‡ (MiT-B5) w/ BLV', 'hrda', 'mitb5', blv, 'hrda_mitb5_blv'),
    )
    return Table(table_id, title, 'per_class', tuple(
        _row(label, dataset, method, bb, b, (paper_key, key))
        for label, method, bb, b, key in rows))


_T7_KEYS = {'gta2cs': 'gta_to_cityscapes', 'syn2cs': 'synthia_to_cityscapes_miou16'}
_T6 = 'table6_variation_type_daformer_r101_gta'
_T7 = 'table7_sigma_daformer_r101'
_T8 = 'table8_components_daformer_r101'


def _r101(dataset: str, label: str, blv: BLVSetting | None, paper: tuple[str, ...]) -> TableRow:
    return _row(label, dataset, 'daformer', 'r101', blv, paper)


def _sigma(dataset: str) -> float:
    return DATASETS[dataset].blv_sigma


EXP40 = Experiment(
    id=40,
    title="BLV paper's UDA tables (3, 4, 6, 7, 8), 3 seeds",
    tables=(
        _main_table(3, 'gta2cs', 'table3_gta_to_cityscapes', 'Table 3: GTA5 → Cityscapes'),
        _main_table(4, 'syn2cs', 'table4_synthia_to_cityscapes',
                    'Table 4: SYNTHIA → Cityscapes'),
        # Table 6: sigma only shapes the gaussian; the others keep Table 3's sigma (unused).
        Table(6, 'Table 6: variation type (DAFormer† R101, GTA5 → Cityscapes)', 'summary', (
            _r101('gta2cs', 'None (baseline)', None, (_T6, 'none')),
            _r101('gta2cs', 'Gaussian', BLVSetting(6.0), (_T6, 'gaussian')),
            _r101('gta2cs', 'Uniform U[0,1]', BLVSetting(6.0, 'uniform'), (_T6, 'uniform_0_1')),
            _r101('gta2cs', 'Beta(0.5, 0.5)', BLVSetting(6.0, 'beta'), (_T6, 'beta_0.5_0.5')),
            _r101('gta2cs', 'Exponential λ=1', BLVSetting(6.0, 'exponential'),
                  (_T6, 'exponential_lambda1')),
        )),
        Table(7, 'Table 7: σ (DAFormer† R101)', 'summary', tuple(
            row for ds in ('gta2cs', 'syn2cs') for row in (
                _r101(ds, 'baseline', None, (_T7, _T7_KEYS[ds], 'baseline')),
                *(_r101(ds, f'σ={s}', BLVSetting(float(s)), (_T7, _T7_KEYS[ds], str(s)))
                  for s in (3, 4, 5, 6, 7)),
            ))),
        Table(8, 'Table 8: BLV components (DAFormer† R101)', 'summary', tuple(
            row for ds in ('gta2cs', 'syn2cs') for row in (
                _r101(ds, 'baseline', None, (_T8, _T7_KEYS[ds], 'baseline')),
                _r101(ds, 'w/o variation', BLVSetting(_sigma(ds), use_variation=False),
                      (_T8, _T7_KEYS[ds], 'without_variation')),
                _r101(ds, 'w/o balance', BLVSetting(_sigma(ds), balance=False),
                      (_T8, _T7_KEYS[ds], 'without_balance')),
                _r101(ds, 'BLV', BLVSetting(_sigma(ds)), (_T8, _T7_KEYS[ds], 'blv')),
            ))),
    ),
    overrides=PAPER_SCHEDULE,
)

# Experiment 0, the demo: the DAFormer-UDA recipe on the synthetic data set
# (tools/make_synthetic_data.py --scale small: 256x144 sources, 256x128 target) with a tiny
# randomly initialised network, 128x128 crops and a short schedule, so that it finishes on a
# 2-core CPU. The knobs: EXP0_ITERS, EXP0_LR, EXP0_DECODER_DIMS, pipeline_sizes, the model
# (ARCHS['tiny_mitb0']).
EXP0_ITERS = 800
EXP0_LR = 6e-4  # 10x the paper's: the paper fine-tunes ImageNet weights, this starts from scratch
# Decoder width: its depthwise-separable ASPP dominates a CPU step; 32 halves it against 64.
EXP0_DECODER_DIMS = 32

EXP0 = Experiment(
    id=0,
    title='demo: source-only vs DAFormer-style UDA vs UDA+BLV on synthetic data (CPU)',
    tables=(Table('demo', 'Demo: synthetic GTA-like → Cityscapes-like (tiny DAFormer, CPU)',
                  'per_class', (
                      _row('source only', 'gta2cs', 'source_only', 'tiny_mitb0'),
                      _row('DAFormer-style UDA', 'gta2cs', 'dacs', 'tiny_mitb0'),
                      _row('DAFormer-style UDA w/ BLV', 'gta2cs', 'dacs', 'tiny_mitb0',
                           BLVSetting(6.0)),
                  )),),
    overrides=dict(
        runner=dict(max_iters=EXP0_ITERS),
        evaluation=dict(interval=EXP0_ITERS),
        checkpoint_config=dict(interval=EXP0_ITERS // 4),
        optimizer=dict(lr=EXP0_LR),
        lr_config=dict(warmup_iters=EXP0_ITERS // 10),
        data=dict(workers_per_gpu=0),
        device='cpu',  # the CPU demo; --device cuda runs it on a GPU
        log_config=dict(interval=EXP0_ITERS // 20),
        model=dict(decode_head=dict(channels=EXP0_DECODER_DIMS,
                                    decoder_params=dict(embed_dims=EXP0_DECODER_DIMS))),
    ),
    # DAFormer's 15/120-row pseudo-label margins of a 512-row crop, at 128 rows.
    method_overrides={'dacs': dict(uda=dict(pseudo_weight_ignore_top=4,
                                            pseudo_weight_ignore_bottom=30))},
    data_root='data/synthetic',
    pipeline_sizes=dict(source_scale=(256, 144), target_scale=(256, 128), crop_size=(128, 128)),
    data_scale=256 / 2048,
)

EXPERIMENTS: dict[int, Experiment] = {e.id: e for e in (EXP0, EXP40)}


def get_experiment(exp_id: int) -> Experiment:
    try:
        return EXPERIMENTS[exp_id]
    except KeyError:
        raise KeyError(f'unknown experiment id {exp_id}; defined: {sorted(EXPERIMENTS)} '
                       f'(mmseg_uda/experiments.py)') from None


# ----------------------------------------------------------------------------- planning


def run_name(exp: Experiment, spec: RunSpec, seed: int) -> str:
    """DAFormer-style name, stable across invocations (no timestamp), so re-runs find it."""
    ds, arch, method = DATASETS[spec.dataset], ARCHS[spec.backbone], METHODS[spec.method]
    crop = (exp.pipeline_sizes or {}).get('crop_size') or (1024 if method.high_res else 512,) * 2
    parts = [f'{ds.hr_name if method.high_res else ds.name}_{crop[0]}x{crop[1]}',
             *method.name_parts,
             arch.hrda_name if method.high_res else arch.name, SCHEDULE_NAME]
    if spec.blv is not None:
        parts.append(spec.blv.tag())
    return '_'.join(parts + [f's{seed}'])


def plan(exp: Experiment, seeds: Iterable[int] | None = None) -> list[Run]:
    """Every run of ``exp``; a row shared by several tables is one run listing them all.

    Seeds are the outer loop, so a partially finished sweep already covers every table once.
    """
    tables_of: dict[RunSpec, list[int | str]] = {}
    for table in exp.tables:
        for row in table.rows:
            served = tables_of.setdefault(row.spec, [])
            if table.id not in served:
                served.append(table.id)
    return [Run(exp.id, spec, seed, tuple(tables), run_name(exp, spec, seed))
            for seed in (exp.seeds if seeds is None else seeds)
            for spec, tables in tables_of.items()]


def estimate_gpu_hours(runs: Sequence[Run]) -> float:
    return sum(GPU_HOURS.get((r.spec.method, r.spec.backbone), 0.0) for r in runs)


# ----------------------------------------------------------------------------- configs


def compose(bases: Sequence[str], overrides: dict, base_dir: Path | None = None) -> dict:
    """Resolve ``_base_`` files (relative to ``base_dir``) plus overrides into one plain dict.

    Uses mmcv's own ``_base_`` mechanism, so its rules apply: bases may not define the same
    top-level key, and overrides may use ``_delete_``.
    """
    base_dir = base_dir or BASE_DIR
    missing = [b for b in bases if not (base_dir / b).is_file()]
    if missing:
        raise FileNotFoundError(f'base config(s) missing under {base_dir}: {missing}')
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'composed.json'
        path.write_text(json.dumps({'_base_': [str(base_dir / b) for b in bases], **overrides}))
        return Config.fromfile(str(path))._cfg_dict.to_dict()


def base_files(spec: RunSpec) -> list[str]:
    ds, arch, method = DATASETS[spec.dataset], ARCHS[spec.backbone], METHODS[spec.method]
    model = arch.hrda_base if method.high_res else arch.base
    if model is None:
        raise ValueError(f'{spec.method} has no {spec.backbone} model in ARCHS')
    return [f'models/{model}', f'datasets/{ds.hr_base if method.high_res else ds.base}',
            f'uda/{method.uda_base}', *COMMON_BASES]


def _data_roots(node: Any) -> Iterable[dict]:
    """Every dict holding a ``data_root`` below ``node``."""
    if isinstance(node, dict):
        if 'data_root' in node:
            yield node
        for value in node.values():
            yield from _data_roots(value)
    elif isinstance(node, list):
        for value in node:
            yield from _data_roots(value)


def relocate_data(cfg: dict, new_root: str) -> None:
    """Point every data set at ``new_root/<name>`` (data/gta/ -> NEW_ROOT/gta/)."""
    for node in _data_roots(cfg.get('data', {})):
        name = os.path.basename(os.path.normpath(node['data_root']))
        node['data_root'] = os.path.join(new_root, name, '')


def adapt_to_data_scale(cfg: dict, factor: float) -> None:
    """Adapt the settings counted in pixels of the ORIGINAL images to data whose linear size is
    ``factor`` times the real sets' (e.g. 256/2048 for the synthetic 'small' set): rare class
    sampling's min_pixels (an area: x factor**2) and HRDA's crop_pseudo_margins (x factor).
    Crops and resizes are unaffected: the pipelines resize every image to the config's scale."""
    train = cfg['data']['train']
    rcs = train.get('rare_class_sampling')
    if rcs:
        rcs['min_pixels'] = max(1, round(rcs['min_pixels'] * factor**2))
    target = train.get('target', {})
    if target.get('crop_pseudo_margins'):
        target['crop_pseudo_margins'] = [round(m * factor) for m in target['crop_pseudo_margins']]


def source_stats_path(cfg: dict) -> str:
    """The source data set's ``sample_class_stats.json``, from which BLV takes class counts."""
    train = cfg.get('data', {}).get('train', {})
    source = train.get('source', train)
    if 'data_root' not in source:
        raise KeyError('config has no data.train.source.data_root (nor data.train.data_root); '
                       'cannot locate the source class statistics for BLV')
    return os.path.join(source['data_root'], STATS_FILE)


def build_config(exp: Experiment, run: Run, *, data_root: str | None = None,
                 data_scale: float | None = None, extra: dict | None = None,
                 work_root: Path = WORK_DIRS, base_dir: Path | None = None) -> dict:
    """The fully resolved config of ``run``; ``extra`` is merged last (e.g. the startup test).

    ``data_root`` and ``data_scale`` replace the experiment's (see `relocate_data` and
    `adapt_to_data_scale`).
    """
    spec = run.spec
    overrides = merged(
        ARCHS[spec.backbone].overrides, METHODS[spec.method].overrides, exp.overrides,
        exp.method_overrides.get(spec.method, {}), extra or {},
        dict(seed=run.seed, name=run.name, work_dir=str(work_root / run.name),
             exp_meta=run.exp_meta()))
    cfg = compose(base_files(spec), overrides, base_dir)
    root = data_root or exp.data_root
    if root:
        relocate_data(cfg, root)
    if exp.pipeline_sizes:
        scale_pipelines(cfg, **exp.pipeline_sizes)
    if data_scale or exp.data_scale:
        adapt_to_data_scale(cfg, data_scale or exp.data_scale)
    if spec.blv is not None:
        # A path, read when BLVLoss is built: configs can be written before the data exists.
        cfg = apply_blv(cfg, source_stats_path(cfg), **spec.blv.meta())
    return cfg
