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

from collections.abc import Iterable, Sequence
from pathlib import Path

from mmcv import Config

from mmseg_uda.datasets import scale_pipelines

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
    SINGLE_DOMAIN,
    UDA_PAIR,
    ZOO_MODELS,
    SamplingRecipe,
    ZooModel,
)
from .specs import Experiment, Run, RunSpec


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


def estimate_gpu_hours(runs: Sequence[Run]) -> float:
    return sum(GPU_HOURS.get((r.spec.method, r.spec.backbone), 0.0) for r in runs)


def base_files(spec: RunSpec) -> list[str]:
    """The ``_base_`` files of a run: its model, its data, its method's own, the schedule; for a
    ``ZOO_MODELS`` architecture, mmseg's zoo config (absolute) with the method's own."""
    ds, method = DATASETS[spec.dataset], METHODS[spec.method]
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


def zoo_overrides(zoo: ZooModel) -> dict:
    """The paper's fully supervised recipe (Sec. 4.1) over a zoo config, and this project's
    runtime (resumable runner, atomic checkpoints at every evaluation, device policy)."""
    runtime = Config.fromfile(str(BASE_DIR / 'default_runtime.py'))._cfg_dict.to_dict()
    interval = zoo.max_iters // 10
    out = merged(runtime, dict(
        runner=dict(_delete_=True, type='ResumableIterBasedRunner', max_iters=zoo.max_iters),
        checkpoint_config=dict(_delete_=True, by_epoch=False, interval=interval,
                               max_keep_ckpts=2),
        evaluation=dict(_delete_=True, interval=interval, metric='mIoU'),
        data=dict(samples_per_gpu=2),
        # Batch statistics over the 8 GPUs of the paper: BN in the config, SyncBN under DDP.
        sync_bn=True))
    if zoo.transformer:
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


def finish_zoo_config(cfg: dict) -> None:
    """After composition: 19 classes in every head (ADE20K configs have 150), BN for SyncBN
    (``sync_bn`` turns it back under DDP), 512x1024 crops (MiT-b0's zoo config has 1024x1024)."""
    set_num_classes(cfg['model'], 19)
    replace_norm(cfg['model'], 'SyncBN', 'BN')
    scale_pipelines(cfg, source_scale=(2048, 1024), crop_size=(512, 1024),
                    test_scale=(2048, 1024))


def build_config(exp: Experiment, run: Run, *, data_root: str | None = None,
                 data_scale: float | None = None, extra: dict | None = None,
                 work_root: Path = WORK_DIRS, base_dir: Path | None = None) -> dict:
    """The fully resolved config of ``run``; ``extra`` is merged last (e.g. the startup test).

    ``data_root`` and ``data_scale`` replace the experiment's (see `relocate_data` and
    `adapt_to_data_scale`).
    """
    spec = run.spec
    sampling = sampling_recipe(spec)
    overrides = merged(
        ARCHS[spec.backbone].overrides if spec.backbone in ARCHS else {},
        METHODS[spec.method].overrides, sampling.overrides if sampling else {}, exp.overrides,
        exp.method_overrides.get(spec.method, {}), extra or {},
        dict(seed=run.seed, name=run.name, work_dir=str(work_root / run.name),
             exp_meta=run.exp_meta()))
    if spec.backbone in ZOO_MODELS:
        overrides = merged(zoo_overrides(ZOO_MODELS[spec.backbone]), overrides)
    cfg = compose(base_files(spec), overrides, base_dir)
    if spec.backbone in ZOO_MODELS:
        finish_zoo_config(cfg)
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
    return cfg
