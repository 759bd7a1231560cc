"""The recipes a run is composed from: its data set, its architecture, its method.

Each recipe names ``_base_`` files (under ``configs/_base_``) and overrides. A data set is one
labelled domain (Cityscapes alone) or a source→target pair; a method says which of the two it
trains on, and which bases it brings (a UDA method its ``uda/`` base, a supervised one maybe
none). `planning.build_config` puts them together.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mmseg_uda.core.evaluation import CITYSCAPES19, SYNTHIA16, EvalProtocol
from mmseg_uda.datasets.partitions import labelled_count

from .composition import merged

UDA_PAIR, SINGLE_DOMAIN = 2, 1  # DatasetRecipe.domains


@dataclass(frozen=True)
class DatasetRecipe:
    name: str           # name prefix, DAFormer style; HR runs use hr_name
    hr_name: str
    base: str           # datasets/ base at DAFormer resolution (512x512 crops)
    # HRDA resolution (1024x1024 crops): scale_pipelines arguments applied to ``base``.
    hr_sizes: dict
    protocol: EvalProtocol
    blv_sigma: float | None = None  # the paper's sigma for this source (Table 7's best)
    domains: int = UDA_PAIR
    # Semi-supervised: 1/labelled_fraction of the training images keep their labels
    # (mmseg_uda.datasets.partitions); None: all of them.
    labelled_fraction: int | None = None


@dataclass(frozen=True)
class ArchRecipe:
    name: str
    base: str                   # models/ base
    hrda_name: str | None       # HRDA wrapper around the same network: name and models/ base
    hrda_base: str | None
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodRecipe:
    bases: tuple[str, ...]      # its own _base_ files (uda/...), none for a plain segmentor
    high_res: bool              # HRDA: HR data sets and the HRDA model wrapper
    name_parts: tuple[str, ...]
    overrides: dict = field(default_factory=dict)
    domains: frozenset[int] = frozenset({UDA_PAIR})  # the DatasetRecipe.domains it trains on
    data_base: str | None = None  # a datasets/ base that replaces the data set's own
    # Trains on the unlabelled images of a semi-supervised partition (needs a DatasetRecipe
    # with labelled_fraction); False: on the labelled images only.
    uses_unlabelled: bool = False


# HRDA's scales are DAFormer's doubled (lhoyer/HRDA, configs/_base_/datasets/*HR*_1024x1024.py).
_CITYSCAPES_HR = dict(target_scale=(2048, 1024), crop_size=(1024, 1024))

DATASETS: dict[str, DatasetRecipe] = {
    'gta2cs': DatasetRecipe('gta2cs', 'gtaHR2csHR', 'uda_gta_to_cityscapes_512x512.py',
                            dict(source_scale=(2560, 1440), **_CITYSCAPES_HR), CITYSCAPES19,
                            blv_sigma=6.0),
    'syn2cs': DatasetRecipe('syn2cs', 'synHR2csHR', 'uda_synthia_to_cityscapes_512x512.py',
                            dict(source_scale=(2560, 1520), **_CITYSCAPES_HR), SYNTHIA16,
                            blv_sigma=4.0),
    # Cityscapes alone, with its labels: supervised training (the paper's Table 1 setting).
    'cs': DatasetRecipe('cs', 'csHR', 'cityscapes_half_512x512.py',
                        dict(source_scale=(2048, 1024), **_CITYSCAPES_HR), CITYSCAPES19,
                        domains=SINGLE_DOMAIN),
    # Cityscapes train with 1/d of its labels (the paper's Table 2 partitions: 186, 372, 744,
    # 1488 of 2975 images); the rest unlabelled.
    **{f'cs_1-{d}': DatasetRecipe(f'cs1-{d}', f'csHR1-{d}', 'cityscapes_half_512x512.py',
                                  dict(source_scale=(2048, 1024), **_CITYSCAPES_HR),
                                  CITYSCAPES19, domains=SINGLE_DOMAIN, labelled_fraction=d)
       for d in (16, 8, 4, 2)},
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


def rare_class_sampling(min_crop_ratio: float) -> dict:
    """DAFormer's rare class sampling (temperature 0.01, 3000 pixels at full resolution)."""
    return dict(data=dict(train=dict(rare_class_sampling=dict(
        min_pixels=3000, class_temp=0.01, min_crop_ratio=min_crop_ratio))))


# Pseudo-label margins: v1 zeroes the top 15 / bottom 120 rows of the target crop (DAFormer);
# v2 is the data set's mask of [top, bottom, left, right] margins in 2048x1024 pixels (HRDA).
_PLCROP_V1 = dict(uda=dict(pseudo_weight_ignore_top=15, pseudo_weight_ignore_bottom=120))
_PLCROP_V2 = dict(data=dict(train=dict(target=dict(crop_pseudo_margins=[30, 240, 30, 30]))))

METHODS: dict[str, MethodRecipe] = {
    # Source-only: DAFormer exp 1's recipe (the same optimiser and schedule, no RCS). On one
    # domain it is plain supervised training.
    'source_only': MethodRecipe(('uda/source_only.py',), False, ('source-only',),
                                domains=frozenset({UDA_PAIR, SINGLE_DOMAIN})),
    'daformer': MethodRecipe(('uda/dacs_a999_fdthings.py',), False,
                             ('dacs_a999_fdthings', 'rcs001-05', 'cpl'),
                             merged(rare_class_sampling(0.5), _PLCROP_V1)),
    # DAFormer's recipe on plain DACS (alpha 0.99, no ImageNet feature distance): experiment 0,
    # whose random-init tiny model has no ImageNet features, and whose 800 iterations are shorter
    # than the ~1000 that alpha=0.999 averages the teacher over.
    'dacs': MethodRecipe(('uda/dacs.py',), False, ('dacs', 'rcs001-05', 'cpl'),
                         merged(rare_class_sampling(0.5), _PLCROP_V1)),
    # Table 1: a plain segmentor on Cityscapes alone, with a ZOO_MODELS architecture.
    'supervised': MethodRecipe((), False, ('supervised',), domains=frozenset({SINGLE_DOMAIN})),
    # Table 2: mean-teacher self-training on a semi-supervised partition of Cityscapes.
    'self_training': MethodRecipe(('uda/self_training.py',), False, ('selftraining',),
                                  domains=frozenset({SINGLE_DOMAIN}), uses_unlabelled=True),
    'hrda': MethodRecipe(('uda/dacs_a999_fdthings.py',), True,
                         ('dacs_a999_fdthings', 'rcs001-20', 'cpl2'),
                         merged(rare_class_sampling(2.0), _PLCROP_V2)),
}


@dataclass(frozen=True)
class ZooModel:
    """An architecture taken whole from mmseg's shipped config zoo (``mmseg/.mim/configs``, read
    from the installed package, never copied): its model, data and schedule, then the paper's
    fully supervised recipe on top (``planning.zoo_overrides``)."""
    name: str               # name part of the runs
    zoo_config: str         # path below mmseg's config zoo
    max_iters: int          # the paper's Sec. 4.1
    transformer: bool       # AdamW 6e-5 / wd 0.01 / 1.5k warmup, linear decay; else SGD 0.01
    cityscapes: bool = True  # False: an ADE20K config whose data becomes mmseg's Cityscapes


# Table 1's architectures (the paper's Sec. 4.1: Cityscapes at 2048x1024, 512x1024 crops, batch
# 16 = 8 GPUs x 2; 160k iterations for MiT-b0, 80k for Swin-T/K-Net and ViT-B/16, 40k for the
# rest). mmseg ships no Cityscapes config of K-Net or of ViT-UperHead: their ADE20K configs get
# mmseg's Cityscapes data and 19 classes.
ZOO_MODELS: dict[str, ZooModel] = {
    'hr18_ocr': ZooModel('ocrnet_hr18', 'ocrnet/ocrnet_hr18_512x1024_40k_cityscapes.py', 40000,
                         False),
    'r50_uper': ZooModel('upernet_r50', 'upernet/upernet_r50_512x1024_40k_cityscapes.py', 40000,
                         False),
    'r50_psp': ZooModel('pspnet_r50-d8', 'pspnet/pspnet_r50-d8_512x1024_40k_cityscapes.py',
                        40000, False),
    'r101_uper': ZooModel('upernet_r101', 'upernet/upernet_r101_512x1024_40k_cityscapes.py',
                          40000, False),
    'mitb0_segformer': ZooModel('segformer_mit-b0',
                                'segformer/segformer_mit-b0_8x1_1024x1024_160k_cityscapes.py',
                                160000, True),
    'swint_knet': ZooModel('knet_s3_upernet_swin-t',
                           'knet/knet_s3_upernet_swin-t_8x2_512x512_adamw_80k_ade20k.py', 80000,
                           True, cityscapes=False),
    'vitb16_uper': ZooModel('upernet_vit-b16_mln', 'vit/upernet_vit-b16_mln_512x512_80k_ade20k.py',
                            80000, True, cityscapes=False),
    # Table 2 (semi-supervised): ResNet-101 + DeepLabV3+, and Table 5's ResNet-50 + PSPNet, with
    # mmseg's 769x769 Cityscapes configs (the paper's crop; sliding-window evaluation).
    'r101_dlv3p': ZooModel('deeplabv3plus_r101-d8',
                           'deeplabv3plus/deeplabv3plus_r101-d8_769x769_80k_cityscapes.py',
                           80000, False),
    'r50_psp_769': ZooModel('pspnet_r50-d8', 'pspnet/pspnet_r50-d8_769x769_40k_cityscapes.py',
                            40000, False),
}
# BLV's sigma in every released (fully supervised) BLV config: 4 (grantword8/BLV e08cc6cb).
RELEASED_BLV_SIGMA = 4.0

# The semi-supervised recipe. The paper (Sec. 4.2) gives SGD 0.01, weight decay 5e-4, teacher
# momentum 0.999, 769x769 crops, batch 16 and sliding-window evaluation, but no schedule. The
# schedule is U2PL's for Cityscapes (Wang et al., CVPR 2022; Haochen-Wang409/U2PL,
# experiments/cityscapes/*/config.yaml, whose recipe the paper's matches): 200 epochs, an epoch
# being one pass over the unlabelled images (U2PL draws the labelled ones as often), SGD
# momentum 0.9, poly decay with power 0.9. One override: SEMI_EPOCHS. The teacher momentum is
# configs/_base_/uda/self_training.py's.
SEMI_EPOCHS = 200
SEMI_BATCH = 16  # 8 GPUs x 2
CITYSCAPES_TRAIN_IMAGES = 2975


def semi_epoch_iters(labelled_fraction: int, num_images: int = CITYSCAPES_TRAIN_IMAGES,
                     batch: int = SEMI_BATCH) -> int:
    """Iterations of one epoch over the unlabelled images (U2PL drops the last partial batch):
    174, 162, 139, 92 for 1/16, 1/8, 1/4, 1/2 of Cityscapes at batch 16."""
    return (num_images - labelled_count(num_images, labelled_fraction)) // batch


@dataclass(frozen=True)
class SamplingRecipe:
    """A data-side long-tail baseline: it replaces the method's rare class sampling (the name
    part that starts with 'rcs') by its own."""
    name_part: str
    overrides: dict


SAMPLINGS: dict[str, SamplingRecipe] = {
    # Table 5's "naive resampling of the input instances" (RS), which the paper does not define.
    # Read here as class-aware sampling (Shen et al., ECCV 2016): each source sample draws a
    # class uniformly, then an image holding more than min_pixels of it, then the pipeline's
    # plain random crop. It differs from DAFormer's RCS in the class law (uniform, not
    # softmax((1 - f) / 0.01)) and in keeping any crop (RCS re-crops towards the class).
    'rs': SamplingRecipe('rs', dict(data=dict(train=dict(rare_class_sampling=dict(
        min_pixels=3000, class_temp=None, min_crop_ratio=0.0))))),
}

# The paper's schedule (DAFormer's poly10warm, lhoyer/DAFormer e6f6e041) is
# schedules/poly10warm.py: 40k iterations, evaluation every 4k. Experiment 40 checkpoints at
# every evaluation (the checkpoint policy: docs/scale.md, "Safe checkpoints").
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

