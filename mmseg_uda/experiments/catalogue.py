"""The catalogue of experiments: experiment 40 (the paper's UDA tables) and experiment 0 (the
CPU demo). An experiment is data (`specs.Experiment`); adding a table means adding rows here.
"""
from __future__ import annotations

from .losses import CE, BLVSetting, LASetting, LossSetting, RWSetting
from .recipes import DATASETS, PAPER_SCHEDULE, RELEASED_BLV_SIGMA
from .specs import Experiment, RunSpec, Table, TableRow


def _row(label: str, dataset: str, method: str, backbone: str, loss: LossSetting | None = None,
         paper: tuple[str, ...] | None = None) -> TableRow:
    """A table row; ``loss`` None is cross entropy."""
    return TableRow(label, RunSpec(dataset, method, backbone, loss or CE), paper)


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


def _r101(dataset: str, label: str, loss: LossSetting | None,
          paper: tuple[str, ...]) -> TableRow:
    return _row(label, dataset, 'daformer', 'r101', loss, paper)


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

_T5 = 'table5_uda_gta_long_tail_methods'
# Table 5's UDA part: the paper's long-tail baselines against BLV on DAFormer† R101,
# GTA5 → Cityscapes. The CE baseline and the BLV row are experiment 40's runs (Tables 3 and 6),
# shared rather than copied; RS, RW and LA are new.
EXP41 = Experiment(
    id=41,
    title="BLV paper's Table 5 (UDA part): long-tail baselines, 3 seeds",
    tables=(Table(5, 'Table 5: long-tail baselines (DAFormer† R101, GTA5 → Cityscapes)',
                  'summary', (
                      _r101('gta2cs', 'baseline', None, (_T6, 'none')),
                      TableRow('RS (class-aware resampling)',
                               RunSpec('gta2cs', 'daformer', 'r101', sampling='rs'),
                               (_T5, 'resample')),
                      _r101('gta2cs', 'RW (inverse-sqrt reweighting)', RWSetting(),
                            (_T5, 'reweight')),
                      _r101('gta2cs', 'LA (τ=1)', LASetting(), (_T5, 'logit_adjustment')),
                      _r101('gta2cs', 'BLV', BLVSetting(6.0), (_T5, 'blv')),
                  )),),
    overrides=PAPER_SCHEDULE,
    shares_runs_of=(EXP40,),
)

_T1 = 'table1_fully_supervised_cityscapes'
_TABLE1_LABELS = {
    'hr18_ocr': 'HRNet-18 + OCRHead', 'r50_uper': 'ResNet-50 + UperHead',
    'r50_psp': 'ResNet-50 + PSPHead', 'r101_uper': 'ResNet-101 + UperHead',
    'mitb0_segformer': 'MiT-b0 + SegformerHead', 'swint_knet': 'Swin-T + K-Net',
    'vitb16_uper': 'ViT-B/16 + UperHead',
}
# Table 1: seven architectures of mmseg's zoo, each with and without BLV (sigma 4, as in every
# released BLV config), trained on Cityscapes alone with the paper's recipe (recipes.ZOO_MODELS).
EXP1 = Experiment(
    id=1,
    title="BLV paper's Table 1: fully supervised Cityscapes, 7 architectures, 3 seeds",
    tables=(Table(1, 'Table 1: fully supervised, Cityscapes val', 'summary', tuple(
        row for arch, label in _TABLE1_LABELS.items() for row in (
            _row(label, 'cs', 'supervised', arch, None, (_T1, arch, 'baseline')),
            _row(f'{label} + BLV', 'cs', 'supervised', arch, BLVSetting(RELEASED_BLV_SIGMA),
                 (_T1, arch, 'blv')),
        ))),),
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
                      # The positive control: logit adjustment raises tail predictions by
                      # construction, so a benchmark that sees the tail should see it move.
                      _row('DAFormer-style UDA w/ LA', 'gta2cs', 'dacs', 'tiny_mitb0',
                           LASetting()),
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

EXPERIMENTS: dict[int, Experiment] = {e.id: e for e in (EXP0, EXP1, EXP40, EXP41)}


def get_experiment(exp_id: int) -> Experiment:
    try:
        return EXPERIMENTS[exp_id]
    except KeyError:
        raise KeyError(f'unknown experiment id {exp_id}; defined: {sorted(EXPERIMENTS)} '
                       f'(mmseg_uda/experiments/catalogue.py)') from None

