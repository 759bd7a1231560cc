"""From an experiment to its runs, and from a run to its fully resolved config.

A run becomes a config by composing the ``_base_`` files of its architecture, data set and
method with mmcv's own ``_base_`` mechanism and merging, in this order, the architecture's and
the method's overrides, the experiment's overrides (its schedule and scale), the run's identity
(seed, name, work dir, exp_meta). An HRDA method scales the data set's pipelines to its
resolution (`scale_pipelines`). BLV is then wired in with ``blv_patches.apply_blv``, pointing
at the source data set's ``sample_class_stats.json``. The result is a plain, self-contained
dict, written as JSON.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from mmcv import Config

from mmseg_uda.datasets import scale_pipelines, without_labels
from mmseg_uda.datasets.partitions import file_source, split_path, write_partition

from .composition import (
    BASE_DIR,
    WORK_DIRS,
    adapt_to_data_scale,
    compose,
    merged,
    mmseg_zoo,
    relocate_data,
    replace_norm,
    set_num_classes,
    source_stats_path,
)
from .losses import CE
from .recipes import (
    ARCHS,
    COMMON_BASES,
    DATASETS,
    GPU_HOURS,
    METHODS,
    SAMPLINGS,
    SCHEDULE_NAME,
    SEMI_EPOCHS,
    SINGLE_DOMAIN,
    UDA_PAIR,
    ZOO_MODELS,
    DatasetRecipe,
    SamplingRecipe,
    ZooModel,
    semi_epoch_iters,
)
from .specs import DEFAULT_PARTITION_SOURCE, Experiment, Run, RunSpec


def sampling_recipe(spec: RunSpec) -> SamplingRecipe | None:
    """The data-side resampling a run names, if any."""
    if spec.sampling is None:
        return None
    if spec.sampling not in SAMPLINGS:
        raise KeyError(f'sampling {spec.sampling!r} is not in SAMPLINGS ({sorted(SAMPLINGS)})')
    return SAMPLINGS[spec.sampling]


def run_name(exp: Experiment, spec: RunSpec, seed: int) -> str:
    """DAFormer-style name, stable across invocations (no timestamp), so re-runs find it."""
    ds, method = DATASETS[spec.dataset], METHODS[spec.method]
    if spec.backbone in ZOO_MODELS:
        zoo = ZOO_MODELS[spec.backbone]
        if ds.labelled_fraction:
            parts = [f'{ds.name}_{SEMI_CROP[0]}x{SEMI_CROP[1]}', *method.name_parts, zoo.name,
                     f'u2pl{semi_schedule(exp)[0]}ep']
            source = exp.partition_source(ds.labelled_fraction)
            if source != DEFAULT_PARTITION_SOURCE:
                parts.append(f'split-{source}')
        else:
            parts = [f'{ds.name}_512x1024', *method.name_parts, zoo.name,
                     f'{zoo.max_iters // 1000}k']
    else:
        arch = ARCHS[spec.backbone]
        crop = ((exp.pipeline_sizes or {}).get('crop_size')
                or (1024 if method.high_res else 512,) * 2)
        method_parts = list(method.name_parts)
        sampling = sampling_recipe(spec)
        if sampling is not None:
            method_parts = [sampling.name_part if p.startswith('rcs') else p
                            for p in method_parts]
        parts = [f'{ds.hr_name if method.high_res else ds.name}_{crop[0]}x{crop[1]}',
                 *method_parts, arch.hrda_name if method.high_res else arch.name, SCHEDULE_NAME]
    if spec.loss.tag():
        parts.append(spec.loss.tag())
    return '_'.join(parts + [f's{seed}'])


def plan(exp: Experiment, seeds: Iterable[int] | None = None) -> list[Run]:
    """Every run of ``exp``; a row shared by several tables is one run listing them all. Rows
    that another experiment's runs serve (``exp.shares_runs_of``) are left out.

    Seeds are the outer loop, so a partially finished sweep already covers every table once.
    """
    tables_of: dict[RunSpec, list[int | str]] = {}
    for table in exp.tables:
        for row in table.rows:
            if exp.shared_spec_owner(row.spec) is not None:
                continue
            served = tables_of.setdefault(row.spec, [])
            if table.id not in served:
                served.append(table.id)
    return [Run(exp.id, spec, seed, tuple(tables), run_name(exp, spec, seed))
            for seed in (exp.seeds if seeds is None else seeds)
            for spec, tables in tables_of.items()]


WARM_START_PREFIX = 'warmstart'


def warm_start_run(exp: Experiment) -> Run | None:
    """The run every run of ``exp`` starts from (``exp.warm_start``), or None. It serves no
    table; the launcher trains it before the others (run_experiments.py)."""
    if exp.warm_start_of is not None:
        return warm_start_run(exp.warm_start_of)
    ws = exp.warm_start
    if ws is None:
        return None
    return Run(exp.id, ws.spec, ws.seed, (),
               f'{WARM_START_PREFIX}_{run_name(exp, ws.spec, ws.seed)}')


def warm_start_checkpoint(exp: Experiment, work_root: Path = WORK_DIRS) -> Path:
    """The checkpoint ``exp``'s warm start leaves: its last iteration's, a fixed name
    (``latest.pth`` would move if the run were ever extended)."""
    if exp.warm_start_of is not None:
        return warm_start_checkpoint(exp.warm_start_of, work_root)
    iters = merged(exp.overrides, exp.warm_start.overrides)['runner']['max_iters']
    return work_root / warm_start_run(exp).name / f'iter_{iters}.pth'


def estimate_gpu_hours(runs: Sequence[Run]) -> float:
    return sum(GPU_HOURS.get((r.spec.method, r.spec.backbone), 0.0) for r in runs)


def base_files(spec: RunSpec) -> list[str]:
    """The ``_base_`` files of a run: its model, its data, its method's own, the schedule; for a
    ``ZOO_MODELS`` architecture, mmseg's zoo config (absolute) with the method's own."""
    ds, method = DATASETS[spec.dataset], METHODS[spec.method]
    if method.uses_unlabelled and not ds.labelled_fraction:
        raise ValueError(f'method {spec.method!r} trains on unlabelled images: its data set must '
                         'be a semi-supervised partition, one of '
                         f'{sorted(k for k, d in DATASETS.items() if d.labelled_fraction)}, not '
                         f'{spec.dataset!r}')
    if spec.backbone in ZOO_MODELS:
        if ds.domains != SINGLE_DOMAIN:
            raise ValueError(f'{spec.backbone} is a fully supervised zoo architecture; its data '
                             f'set must be a single domain, not {spec.dataset!r}')
        return [str(mmseg_zoo() / ZOO_MODELS[spec.backbone].zoo_config), *method.bases]
    arch = ARCHS[spec.backbone]
    if ds.domains not in method.domains:
        kind = {UDA_PAIR: 'a source→target pair', SINGLE_DOMAIN: 'one domain'}[ds.domains]
        raise ValueError(f'method {spec.method!r} cannot train on {spec.dataset!r}, which is '
                         f'{kind}; its data sets: '
                         f'{sorted(k for k, d in DATASETS.items() if d.domains in method.domains)}')
    model = arch.hrda_base if method.high_res else arch.base
    if model is None:
        raise ValueError(f'{spec.method} has no {spec.backbone} model in ARCHS')
    return [f'models/{model}', f'datasets/{method.data_base or ds.base}', *method.bases,
            *COMMON_BASES]


def semi_schedule(exp: Experiment) -> tuple[int, dict]:
    """(epochs, keyword arguments of ``semi_epoch_iters``) of an experiment's semi-supervised
    runs: the paper's (U2PL's) unless ``exp.semi_schedule`` says otherwise."""
    schedule = dict(exp.semi_schedule or {})
    return schedule.pop('epochs', SEMI_EPOCHS), schedule


def semi_iters(exp: Experiment, ds: DatasetRecipe) -> tuple[int, int]:
    """(iterations per epoch, total iterations) of a semi-supervised run (U2PL's schedule)."""
    epochs, schedule = semi_schedule(exp)
    epoch = semi_epoch_iters(ds.labelled_fraction, **schedule)
    return epoch, epochs * epoch


def zoo_overrides(zoo: ZooModel, ds: DatasetRecipe, exp: Experiment) -> dict:
    """The paper's fully supervised (Sec. 4.1) or semi-supervised (Sec. 4.2, with U2PL's
    schedule) recipe over a zoo config, and this project's runtime (resumable runner, atomic
    checkpoints at every evaluation, device policy)."""
    runtime = Config.fromfile(str(BASE_DIR / 'default_runtime.py'))._cfg_dict.to_dict()
    max_iters = semi_iters(exp, ds)[1] if ds.labelled_fraction else zoo.max_iters
    interval = max(1, max_iters // 10)
    out = merged(runtime, dict(
        runner=dict(_delete_=True, type='ResumableIterBasedRunner', max_iters=max_iters),
        checkpoint_config=dict(_delete_=True, by_epoch=False, interval=interval,
                               max_keep_ckpts=2),
        evaluation=dict(_delete_=True, interval=interval, metric='mIoU'),
        data=dict(samples_per_gpu=2),
        # Batch statistics over the 8 GPUs of the paper: BN in the config, SyncBN under DDP.
        sync_bn=True))
    if ds.labelled_fraction:
        out = merged(out, dict(
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
            lr_config=dict(_delete_=True, policy='poly', power=0.9, min_lr=0.0, by_epoch=False)))
    elif zoo.transformer:
        out = merged(out, dict(
            optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
            lr_config=dict(_delete_=True, policy='poly', warmup='linear', warmup_iters=1500,
                           warmup_ratio=1e-6, power=1.0, min_lr=0.0, by_epoch=False)))
    else:
        out = merged(out, dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                                              weight_decay=5e-4)))
    if not zoo.cityscapes:
        cityscapes = Config.fromfile(str(mmseg_zoo() / '_base_' / 'datasets' / 'cityscapes.py'))
        cityscapes = cityscapes._cfg_dict.to_dict()
        out = merged(out, dict(data=dict(cityscapes['data'], _delete_=True, samples_per_gpu=2),
                               train_pipeline=cityscapes['train_pipeline'],
                               test_pipeline=cityscapes['test_pipeline']))
    return out


# The semi-supervised crop (Sec. 4.2) and the scale of mmseg's 769x769 Cityscapes configs.
SEMI_CROP = (769, 769)
SEMI_SCALE = (2049, 1025)


def finish_zoo_config(cfg: dict, ds: DatasetRecipe) -> None:
    """After composition: 19 classes in every head (ADE20K configs have 150), BN for SyncBN
    (``sync_bn`` turns it back under DDP), the paper's crops: 512x1024 fully supervised
    (MiT-b0's zoo config has 1024x1024), 769x769 semi-supervised."""
    set_num_classes(cfg['model'], 19)
    replace_norm(cfg['model'], 'SyncBN', 'BN')
    if ds.labelled_fraction:
        scale_pipelines(cfg, source_scale=SEMI_SCALE, crop_size=SEMI_CROP,
                        test_scale=SEMI_SCALE)
    else:
        scale_pipelines(cfg, source_scale=(2048, 1024), crop_size=(512, 1024),
                        test_scale=(2048, 1024))


def partition_data(cfg: dict, labelled_fraction: int, uses_unlabelled: bool,
                   source: str) -> None:
    """The data of a semi-supervised run: the zoo's Cityscapes train restricted to the
    partition's labelled images (``split``); with ``uses_unlabelled`` a ``UDADataset`` pairing
    them with the unlabelled ones (the same pipeline without labels), and a student that takes
    per-pixel weights."""
    labelled = dict(cfg['data']['train'], split=split_path(labelled_fraction, source, 'labelled'))
    if not uses_unlabelled:
        cfg['data']['train'] = labelled
        return
    unlabelled = {k: labelled[k] for k in ('type', 'data_root', 'img_dir', 'ann_dir')}
    unlabelled.update(split=split_path(labelled_fraction, source, 'unlabelled'),
                      pipeline=without_labels(labelled['pipeline']))
    cfg['data']['train'] = dict(type='UDADataset', source=labelled, target=unlabelled)
    if cfg['model']['type'] == 'EncoderDecoder':
        cfg['model']['type'] = 'UDAEncoderDecoder'  # a drop-in that takes seg_weight


def add_unlabelled_pass(cfg: dict, epoch_iters: int) -> None:
    """Paper Eq. 4 as Sec. 3.3 states it, for BLV in self-training: after every epoch the
    teacher labels every unlabelled image (whole, with the test pipeline) and BLV's class
    counts become the pseudo-labels', plus one pixel per class: a class the teacher never
    predicts then gets the largest variation, the limit of Eq. 3 as its count goes to 0, rather
    than none (``PseudoLabelClassFrequency``'s ``smoothing``)."""
    target = cfg['data']['train']['target']
    cfg['uda']['pseudo_label_observers'] = [dict(
        type='PseudoLabelClassFrequency', interval=epoch_iters, source='unlabelled_pass',
        smoothing=1.0)]
    cfg['pseudo_label_pass'] = dict(data=dict(
        {k: target[k] for k in ('type', 'data_root', 'img_dir', 'ann_dir', 'split')},
        pipeline=cfg['data']['val']['pipeline']))


def run_meta(exp: Experiment, run: Run, is_warm_start: bool = False) -> dict:
    """The run's ``exp_meta``; a semi-supervised run adds its partition, a warm start says so."""
    meta = run.exp_meta()
    if is_warm_start:
        meta['warm_start'] = True
    fraction = DATASETS[run.spec.dataset].labelled_fraction
    if fraction:
        meta['partition'] = dict(labelled_fraction=fraction,
                                 source=exp.partition_source(fraction))
    return meta


def build_config(exp: Experiment, run: Run, *, data_root: str | None = None,
                 data_scale: float | None = None, extra: dict | None = None,
                 work_root: Path = WORK_DIRS, base_dir: Path | None = None) -> dict:
    """The fully resolved config of ``run``; ``extra`` is merged last (e.g. the startup test).

    ``data_root`` and ``data_scale`` replace the experiment's (see `relocate_data` and
    `adapt_to_data_scale`).
    """
    spec = run.spec
    sampling = sampling_recipe(spec)
    warm = warm_start_run(exp)
    is_warm_start = warm is not None and run.name == warm.name
    if is_warm_start and exp.warm_start_of is not None:   # another experiment's run
        return build_config(exp.warm_start_of, run, data_root=data_root, data_scale=data_scale,
                            extra=extra, work_root=work_root, base_dir=base_dir)
    overrides = merged(
        ARCHS[spec.backbone].overrides if spec.backbone in ARCHS else {},
        METHODS[spec.method].overrides, sampling.overrides if sampling else {}, exp.overrides,
        exp.method_overrides.get(spec.method, {}),
        exp.warm_start.overrides if is_warm_start else {}, extra or {},
        dict(seed=run.seed, name=run.name, work_dir=str(work_root / run.name),
             exp_meta=run_meta(exp, run, is_warm_start)))
    if warm is not None and not is_warm_start:
        # The whole segmentor's weights, as the run's first state (a resume still wins).
        overrides['load_from'] = str(warm_start_checkpoint(exp, work_root))
    ds, method = DATASETS[spec.dataset], METHODS[spec.method]
    if spec.backbone in ZOO_MODELS:
        overrides = merged(zoo_overrides(ZOO_MODELS[spec.backbone], ds, exp), overrides)
    cfg = compose(base_files(spec), overrides, base_dir)
    if spec.backbone in ZOO_MODELS:
        finish_zoo_config(cfg, ds)
    if ds.labelled_fraction:
        partition_data(cfg, ds.labelled_fraction, method.uses_unlabelled,
                       exp.partition_source(ds.labelled_fraction))
    if METHODS[spec.method].high_res:
        scale_pipelines(cfg, **DATASETS[spec.dataset].hr_sizes)
    root = data_root or exp.data_root
    if root:
        relocate_data(cfg, root)
    if exp.pipeline_sizes:
        scale_pipelines(cfg, **exp.pipeline_sizes)
    if data_scale or exp.data_scale:
        adapt_to_data_scale(cfg, data_scale or exp.data_scale)
    if spec.loss != CE:
        # A path, read when the loss is built: configs can be written before the data exists.
        cfg = spec.loss.apply(cfg, source_stats_path(cfg))
    if spec.blv is not None and method.uses_unlabelled:
        add_unlabelled_pass(cfg, semi_iters(exp, ds)[0])
    return cfg


def write_partitions(cfg: dict, split_files: dict[int, str] | None = None) -> Path | None:
    """Write the semi-supervised partition a config trains on, if it has one, into its data
    root (``mmseg_uda.datasets.partitions.write_partition``): drawn from its seed when missing,
    or, for a ``file-<sha>`` source, from ``split_files[labelled_fraction]``. Returns the
    partition's folder."""
    partition = cfg.get('exp_meta', {}).get('partition')
    if not partition:
        return None
    train = cfg['data']['train']
    root = train.get('source', train)['data_root']
    fraction, source = partition['labelled_fraction'], partition['source']
    folder = Path(root) / os.path.dirname(split_path(fraction, source, 'labelled'))
    if source.startswith('seed'):
        if not (folder / 'unlabelled.txt').is_file():
            write_partition(root, fraction, seed=int(source[len('seed'):]))
        return folder
    split_file = (split_files or {}).get(fraction)
    if split_file is None:
        if (folder / 'unlabelled.txt').is_file():
            return folder
        raise FileNotFoundError(f'{cfg["name"]} trains on the published 1/{fraction} list '
                                f'{source}, which is not written in {folder}; pass '
                                f'--split-file {fraction}=PATH')
    if file_source(split_file) != source:
        raise ValueError(f'{split_file} is not the list {source} that {cfg["name"]} names')
    return write_partition(root, fraction, split_file=split_file)
