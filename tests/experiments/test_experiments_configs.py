"""The generated configs: `run_experiments.py --dry-run`, the recipes they encode, BLV wiring,
and that every experiment-40 config loads and builds its model and data sets on synthetic data."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from experiments_helpers import TINY_SCALE, load_script
from mmcv import Config
from mmcv.utils import build_from_cfg
from mmseg.datasets import build_dataset
from mmseg.datasets.builder import PIPELINES
from mmseg.models.builder import build_loss

from mmseg_uda.experiments import (
    EXP0,
    EXP0_ITERS,
    EXP40,
    Experiment,
    RunSpec,
    Table,
    TableRow,
    build_config,
    plan,
)
from mmseg_uda.experiments.catalogue import EXP0_LR, EXP0_WARM_START_ITERS
from mmseg_uda.experiments.composition import WORK_DIRS
from mmseg_uda.experiments.planning import warm_start_run
from mmseg_uda.models.uda import build_train_model


def dry_run(out: Path, *extra: str) -> tuple[str, Path]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = load_script('run_experiments.py').main(
            ['--exp', '40', '--dry-run', '--config-dir', str(out / 'configs'),
             '--work-root', str(out / 'work'), *extra])
    assert code == 0
    return buf.getvalue(), out / 'configs'


@pytest.fixture(scope='module')
def exp40(tmp_path_factory) -> tuple[str, Path]:
    return dry_run(tmp_path_factory.mktemp('dry'))


def _seed0_configs(config_dir: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(config_dir.glob('*_s0.json')):
        out[path.stem] = json.loads(path.read_text())
    return out


def _losses(node) -> list[dict]:
    """Every loss_decode dict below ``node``."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'loss_decode':
                found += value if isinstance(value, list) else [value]
            else:
                found += _losses(value)
    elif isinstance(node, list):
        for value in node:
            found += _losses(value)
    return found


def test_dry_run_writes_every_config_and_prints_one_line_per_run(exp40, tmp_path):
    printed, config_dir = exp40
    lines = printed.splitlines()
    assert len(lines) == 87 == len(list(config_dir.glob('*.json')))
    for line in lines:
        name, meta = line.split(' ', 1)
        cfg = json.loads((config_dir / f'{name}.json').read_text())
        assert cfg['exp_meta'] == json.loads(meta)
        assert cfg['name'] == name and Path(cfg['work_dir']).name == name
    assert not (config_dir.parent / 'work').exists()  # nothing trained


def test_dry_run_needs_no_data(exp40):
    """BLV configs name the stats file of the source; nothing is read at generation time."""
    cfg = _seed0_configs(exp40[1])[
        'syn2cs_512x512_dacs_a999_fdthings_rcs001-05_cpl_dlv2red_r101v1c_poly10warm_blv4_s0']
    assert _losses(cfg['model'])[0]['class_counts'] == 'data/synthia/sample_class_stats.json'


def _pipeline_step(pipeline: list[dict], kind: str) -> dict:
    return next(t for t in pipeline if t['type'] == kind)


def test_recipes(exp40):
    configs = _seed0_configs(exp40[1])
    assert len(configs) == 29
    for name, cfg in configs.items():
        meta = cfg['exp_meta']
        train = cfg['data']['train']
        source_root = {'gta2cs': 'data/gta/', 'syn2cs': 'data/synthia/'}[meta['dataset']]
        assert train['source']['data_root'] == source_root, name
        assert train['target']['data_root'] == cfg['data']['val']['data_root'] == 'data/cityscapes/'
        # DAFormer's recipe: AdamW 6e-5, head x10, poly with 1500 warmup iterations, 40k x batch 2
        opt = cfg['optimizer']
        assert (opt['type'], opt['lr'], opt['weight_decay']) == ('AdamW', 6e-05, 0.01)
        keys = opt['paramwise_cfg']['custom_keys']
        assert keys['head'] == {'lr_mult': 10.0}
        assert ('pos_block' in keys and 'norm' in keys) == (meta['backbone'] == 'mitb5'), name
        assert (cfg['lr_config']['policy'], cfg['lr_config']['warmup_iters']) == ('poly', 1500)
        assert cfg['runner']['max_iters'] == 40000 and cfg['evaluation']['interval'] == 4000
        assert cfg['checkpoint_config']['interval'] == 4000
        assert cfg['data']['samples_per_gpu'] == 2 and cfg['seed'] == 0
        assert cfg['optimizer_config'] is None  # the UDA wrapper steps the optimizer itself

        backbone = cfg['model']['backbone']
        if meta['backbone'] == 'r101':
            assert (backbone['type'], backbone['depth']) == ('ResNetV1c', 101)
            assert cfg['model']['decode_head']['type'] == 'DLV2Head'
        else:
            assert backbone['type'] == 'MiTSegFormerNorms'  # SegFormer's LayerNorm eps
            assert backbone['num_layers'] == [3, 6, 40, 3]

        crop = 1024 if meta['method'] == 'hrda' else 512
        assert _pipeline_step(train['source']['pipeline'], 'RandomCrop')['crop_size'] == [crop] * 2
        rcs = train.get('rare_class_sampling')
        if meta['method'] == 'source_only':
            assert cfg['uda']['type'] == 'SourceOnly' and rcs is None
            continue
        uda = cfg['uda']
        assert (uda['type'], uda['alpha'], uda['imnet_feature_dist_lambda']) == \
            ('DACS', 0.999, 0.005)
        assert uda['imnet_feature_dist_classes'] == [6, 7, 11, 12, 13, 14, 15, 16, 17, 18]
        assert (rcs['class_temp'], rcs['min_pixels']) == (0.01, 3000)
        if meta['method'] == 'hrda':
            assert cfg['model']['type'] == 'HRDAEncoderDecoder'
            assert rcs['min_crop_ratio'] == 2.0
            assert train['target']['crop_pseudo_margins'] == [30, 240, 30, 30]
            assert uda['pseudo_weight_ignore_top'] == uda['pseudo_weight_ignore_bottom'] == 0
        else:
            assert rcs['min_crop_ratio'] == 0.5
            assert uda['pseudo_weight_ignore_top'] == 15
            assert uda['pseudo_weight_ignore_bottom'] == 120
            assert 'crop_pseudo_margins' not in train['target']


def test_blv_wiring(exp40):
    for name, cfg in _seed0_configs(exp40[1]).items():
        blv = cfg['exp_meta']['blv']
        losses = _losses(cfg['model'])
        assert losses, name
        for loss in losses:
            if blv is None:
                assert loss['type'] == 'CrossEntropyLoss', name
            else:
                stats = cfg['data']['train']['source']['data_root'] + 'sample_class_stats.json'
                assert loss['type'] == 'BLVLoss' and loss['class_counts'] == stats, name
                assert {k: loss[k] for k in blv} == blv, name


def test_data_scale_adapts_pixel_counts_of_the_original_images(tmp_path):
    _, config_dir = dry_run(tmp_path, '--seeds', '0', '--filter',
                            r'gtaHR.*_blv6_s0$|gta2cs.*dlv2red_r101v1c_poly10warm_blv6_s0$',
                            '--data-scale', '0.125')
    r101, hrda = (json.loads(p.read_text()) for p in sorted(config_dir.glob('*.json')))
    assert hrda['data']['train']['rare_class_sampling']['min_pixels'] == 47  # 3000 / 64
    assert hrda['data']['train']['target']['crop_pseudo_margins'] == [4, 30, 4, 4]
    assert r101['uda']['pseudo_weight_ignore_bottom'] == 120  # crop rows: not rescaled


def test_data_root_is_relocated_everywhere():
    run = next(r for r in plan(EXP40, seeds=[0]) if r.spec.blv and r.spec.method == 'hrda')
    cfg = build_config(EXP40, run, data_root='/x/synthetic')
    data = cfg['data']
    roots = [data['train']['source']['data_root'], data['train']['target']['data_root'],
             data['val']['data_root'], data['test']['data_root']]
    assert roots == ['/x/synthetic/gta/'] + ['/x/synthetic/cityscapes/'] * 3
    assert {loss['class_counts'] for loss in _losses(cfg['model'])} == {
        '/x/synthetic/gta/sample_class_stats.json'}


def test_generated_json_config_loads_for_mmseg(exp40):
    """JSON has no tuples; a generated config must still build mmseg's tuple-only transforms
    and mmcv's runner workflow (this needs mmseg_uda's compat fix for JSON configs)."""
    path = next(exp40[1].glob('gta2cs_512x512_source-only_*_s0.json'))
    cfg = Config.fromfile(str(path))
    assert all(isinstance(w, tuple) for w in cfg.workflow)
    build_from_cfg(_pipeline_step(cfg.data.train.source.pipeline, 'Resize'), PIPELINES)
    build_from_cfg(cfg.data.val.pipeline[1], PIPELINES)  # MultiScaleFlipAug


@pytest.fixture(scope='module')
def on_synthetic(tmp_path_factory, tiny_data):
    """Every seed-0 experiment-40 config, pointed at the tiny synthetic data set."""
    _, config_dir = dry_run(tmp_path_factory.mktemp('synthetic_configs'), '--seeds', '0',
                            '--data-root', tiny_data, '--data-scale', str(TINY_SCALE))
    return sorted(config_dir.glob('*.json'))


def test_every_config_builds_its_data_sets_and_losses(on_synthetic):
    assert len(on_synthetic) == 29
    for path in on_synthetic:
        cfg = Config.fromfile(str(path))
        sample = build_dataset(cfg.data.train)[0]
        crop = 1024 if cfg.exp_meta.method == 'hrda' else 512
        assert tuple(sample['img'].data.shape) == (3, crop, crop), path.name
        assert tuple(sample['target_img'].data.shape) == (3, crop, crop), path.name
        assert build_dataset(cfg.data.val)[0]['img'][0].data.dim() == 3, path.name
        for loss in _losses(cfg.model):
            build_loss(loss)  # BLVLoss reads the synthetic source statistics here


def _one_per_model_kind(paths: list[Path]) -> list[Path]:
    """GTA configs of each (method, backbone), with BLV where the method has it."""
    chosen = {}
    for path in paths:
        meta = json.loads(path.read_text())['exp_meta']
        if meta['dataset'] == 'gta2cs' and (meta['blv'] or meta['method'] == 'source_only'):
            chosen.setdefault((meta['method'], meta['backbone']), path)
    assert len(chosen) == 4
    return list(chosen.values())


def _build_models(paths: list[Path]) -> None:
    for path in paths:
        cfg = Config.fromfile(str(path))
        model = build_train_model(cfg)
        student = getattr(model, 'model', model)
        assert student.decode_head.num_classes == 19, path.name


def test_each_model_kind_builds(on_synthetic):
    _build_models(_one_per_model_kind(on_synthetic))


@pytest.mark.slow
def test_every_config_builds_its_model(on_synthetic):
    _build_models(on_synthetic)


def test_real_run_without_stats_names_the_converter(tmp_path):
    """Configs are written without data; training then stops before any run starts."""
    with pytest.raises(SystemExit,
                       match=r'run `python tools/convert_datasets/gta\.py .*nodata/gta'):
        load_script('run_experiments.py').main(
            ['--exp', '40', '--seeds', '0', '--filter', r'gta2cs.*dlv2red.*_blv6_s0$',
             '--data-root', str(tmp_path / 'nodata'), '--work-root', str(tmp_path / 'work'),
             '--config-dir', str(tmp_path / 'configs')])
    assert len(list((tmp_path / 'configs').glob('*.json'))) == 1
    assert not (tmp_path / 'work').exists()


def test_exp0_is_the_tiny_demo_on_synthetic_data():
    runs = plan(EXP0, seeds=[0])
    # DAFormer's name for DACS without the ImageNet feature distance and with alpha=0.99
    assert runs[1].name == 'gta2cs_128x128_dacs_rcs001-05_cpl_tiny_daformer_mitb0_poly10warm_s0'
    source_only, uda, blv, la = (build_config(EXP0, run) for run in runs)
    for cfg in (source_only, uda, blv, la):
        assert cfg['exp_meta']['tables'] == ['demo']
        assert cfg['data']['train']['source']['data_root'] == 'data/synthetic/gta/'
        assert _pipeline_step(cfg['data']['train']['source']['pipeline'],
                              'RandomCrop')['crop_size'] == (128, 128)
        assert cfg['model']['backbone']['num_layers'] == [1, 1, 1, 1]
        assert cfg['runner']['max_iters'] == EXP0_ITERS
    assert source_only['uda'] == {'type': 'SourceOnly'}  # no DACS option leaks into it
    assert uda['uda']['imnet_feature_dist_lambda'] == 0.0  # no ImageNet weights
    assert uda['uda']['alpha'] == 0.99
    assert uda['data']['train']['rare_class_sampling']['min_pixels'] == 47  # 3000 / 8**2
    assert [loss['type'] for loss in _losses(blv['model'])] == ['BLVLoss']
    assert _losses(blv['model'])[0]['class_counts'] == 'data/synthetic/gta/sample_class_stats.json'
    assert _losses(la['model']) == [dict(type='LogitAdjustedLoss', loss_weight=1.0, tau=0.3,
                                         class_counts=_losses(blv['model'])[0]['class_counts'])]
    assert la['exp_meta']['loss'] == {'type': 'la', 'tau': 0.3} and la['exp_meta']['blv'] is None

    # Every row starts from the one warm start, a source-only run on the source with RCS.
    warm_run = warm_start_run(EXP0)
    warm = build_config(EXP0, warm_run)
    assert warm['exp_meta']['tables'] == [] and warm['exp_meta']['warm_start'] is True
    assert warm['data']['train']['source'] == source_only['data']['train']['source']
    assert warm['data']['train']['rare_class_sampling']['min_pixels'] == 47
    assert warm['runner']['max_iters'] == EXP0_WARM_START_ITERS and warm['load_from'] is None
    assert warm['optimizer']['lr'] == source_only['optimizer']['lr'] == EXP0_LR
    assert warm['model'] == source_only['model']     # the same segmentor, weights carried over
    start = WORK_DIRS / warm_run.name / f'iter_{EXP0_WARM_START_ITERS}.pth'
    assert all(cfg['load_from'] == str(start) for cfg in (source_only, uda, blv, la))
    assert warm_start_run(EXP40) is None
    assert build_config(EXP40, plan(EXP40, seeds=[0])[0]).get('load_from') is None


def test_exp3_starts_from_experiment_0s_warm_start_itself(tmp_path):
    """Experiment 3's rows train on another data set at other sizes, yet their warm start is
    experiment 0's run to the byte: same name, same config (its data, its sizes, exp_meta.exp
    0), so one run in a shared work root serves both and the sweep sees no changed setting."""
    from mmseg_uda.experiments import EXPERIMENTS
    exp3 = EXPERIMENTS[3]
    warm0, warm3 = warm_start_run(EXP0), warm_start_run(exp3)
    assert warm3 == warm0
    assert build_config(exp3, warm3, work_root=tmp_path) == build_config(EXP0, warm0,
                                                                         work_root=tmp_path)
    start = tmp_path / warm0.name / f'iter_{EXP0_WARM_START_ITERS}.pth'
    rows = [build_config(exp3, run, work_root=tmp_path) for run in plan(exp3, seeds=[0])]
    assert len(rows) == 4 and all(cfg['load_from'] == str(start) for cfg in rows)
    # ... while the rows keep experiment 3's own data and sizes.
    for cfg in rows:
        train = cfg['data']['train'].get('source', cfg['data']['train'])
        assert train['data_root'] == 'data/synthetic_semi/cityscapes/'
        assert tuple(_pipeline_step(train['pipeline'], 'Resize')['img_scale']) == (256, 128)


# --- a single-domain data set, and a method without a uda/ base ------------------------------

def _one_run_experiment(dataset: str, method: str) -> Experiment:
    from mmseg_uda.datasets.synthetic import SCALES
    size = SCALES['tiny'].cityscapes_size
    row = TableRow('row', RunSpec(dataset, method, 'tiny_mitb0'))
    return Experiment(id=99, title='one run', tables=(Table('t', 't', 'summary', (row,)),),
                      seeds=(0,), overrides=dict(data=dict(workers_per_gpu=0), device='cpu'),
                      pipeline_sizes=dict(source_scale=size, target_scale=size,
                                          crop_size=(48, 48)))


def test_a_single_domain_run_trains_on_labelled_cityscapes(tiny_data):
    """Cityscapes alone ('cs'): the labelled set is data.train itself, scaled as a source."""
    from mmseg_uda.core.evaluation import CITYSCAPES19, evaluation_protocol

    exp = _one_run_experiment('cs', 'source_only')
    (run,) = plan(exp)
    assert run.name == 'cs_48x48_source-only_tiny_daformer_mitb0_poly10warm_s0'
    cfg = Config(build_config(exp, run, data_root=tiny_data))
    assert cfg.data.train.type == 'CityscapesDataset' and 'source' not in cfg.data.train
    assert cfg.data.train.img_dir == 'leftImg8bit/train' and cfg.uda == dict(type='SourceOnly')
    assert _pipeline_step(cfg.data.train.pipeline, 'RandomCrop')['cat_max_ratio'] == 0.75
    assert evaluation_protocol(cfg) is CITYSCAPES19
    sample = build_dataset(cfg.data.train)[0]
    assert tuple(sample['gt_semantic_seg'].data.shape) == (1, 48, 48)
    assert 'target_img' not in sample
    assert type(build_train_model(cfg)).__name__ == 'SourceOnly'


def test_a_uda_method_refuses_a_single_domain_data_set():
    exp = _one_run_experiment('cs', 'daformer')
    with pytest.raises(ValueError, match=r"method 'daformer' cannot train on 'cs', which is "
                                         r"one domain; its data sets: \['gta2cs', 'syn2cs'\]"):
        build_config(exp, plan(exp)[0])


def test_a_method_may_bring_no_uda_base(monkeypatch, tiny_data):
    """A plain segmentor: no uda/ base, no ``uda`` key; the segmentor itself trains."""
    from mmseg_uda.experiments import METHODS, MethodRecipe
    monkeypatch.setitem(METHODS, 'plain', MethodRecipe((), False, ('plain',),
                                                       domains=frozenset({1})))
    exp = _one_run_experiment('cs', 'plain')
    cfg = Config(build_config(exp, plan(exp)[0], data_root=tiny_data))
    assert 'uda' not in cfg and cfg.get('optimizer_config') is None
    assert type(build_train_model(cfg)).__name__ == 'UDAEncoderDecoder'  # mmseg's, extended


# --- experiment 1: Table 1 from mmseg's zoo ---------------------------------------------------

def _walk_values(node, key):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            else:
                yield from _walk_values(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_values(v, key)


def test_exp1_is_table_1_with_the_papers_recipe(tmp_path):
    """Seven zoo architectures x (CE, BLV sigma 4), Cityscapes alone at 2048x1024 with 512x1024
    crops, batch 2 per GPU (16 on the paper's 8 GPUs), each with the paper's optimizer and
    iterations; ADE20K zoo configs (K-Net, ViT) get Cityscapes' data and 19 classes."""
    from mmseg_uda.config_check import check_config
    from mmseg_uda.experiments import EXPERIMENTS
    from mmseg_uda.experiments.recipes import ZOO_MODELS
    exp = EXPERIMENTS[1]
    runs = plan(exp, seeds=[0])
    # Table 1's 14, and Table 5's LA and Lovász on ViT-B/16 (its baseline and BLV are Table 1's).
    assert len(runs) == 16 and len(plan(exp)) == 48
    assert sorted(r.spec.loss.kind for r in runs if r.tables == ('5-fully',)) == ['la', 'lovasz']
    for run in runs:
        cfg = build_config(exp, run)
        zoo = ZOO_MODELS[run.spec.backbone]
        check_config(cfg)
        assert cfg['data']['train']['type'] == 'CityscapesDataset'
        assert cfg['data']['train']['data_root'] == 'data/cityscapes/'
        assert _pipeline_step(cfg['data']['train']['pipeline'], 'RandomCrop')['crop_size'] == \
            (512, 1024)
        assert cfg['data']['samples_per_gpu'] == 2 and 'uda' not in cfg
        assert set(_walk_values(cfg['model'], 'num_classes')) == {19}
        assert 'SyncBN' not in {n.get('type') for n in _walk_values(cfg['model'], 'norm_cfg')}
        assert cfg['sync_bn'] is True and cfg['runner'] == dict(
            type='ResumableIterBasedRunner', max_iters=zoo.max_iters)
        opt = cfg['optimizer']
        if zoo.transformer:
            assert (opt['type'], opt['lr'], opt['weight_decay']) == ('AdamW', 6e-5, 0.01)
            assert cfg['lr_config']['warmup_iters'] == 1500 and cfg['lr_config']['power'] == 1.0
        else:
            assert (opt['type'], opt['lr'], opt['weight_decay']) == ('SGD', 0.01, 5e-4)
        losses = [loss['type'] for loss in _losses(cfg['model'])]
        if run.spec.loss.kind in ('la', 'lovasz'):
            assert set(losses) == {'LogitAdjustedLoss' if run.spec.loss.kind == 'la'
                                   else 'LovaszLoss'}
            assert run.spec.backbone == 'vitb16_uper'
        elif run.spec.blv is None:
            assert set(losses) == {'CrossEntropyLoss'}
        else:
            assert set(losses) == {'BLVLoss'} and run.spec.blv.sigma == 4.0
            assert {loss['class_counts'] for loss in _losses(cfg['model'])} == {
                'data/cityscapes/sample_class_stats.json'}
    assert {ZOO_MODELS[r.spec.backbone].max_iters for r in runs} == {40000, 80000, 160000}


def test_exp1_derived_ade_configs_build_their_models():
    """K-Net (Swin-T) and ViT-B/16 + UperHead: mmseg ships them for ADE20K only."""
    from mmseg_uda.experiments import EXPERIMENTS
    exp = EXPERIMENTS[1]
    for run in plan(exp, seeds=[0]):
        if run.spec.backbone in ('swint_knet', 'vitb16_uper') and run.spec.loss.kind == 'ce':
            model = build_train_model(Config(build_config(exp, run)))
            heads = [m for m in model.modules() if hasattr(m, 'num_classes')]
            assert heads and {h.num_classes for h in heads} == {19}


# --- experiment 2: Table 2 and Table 5's semi-supervised column ------------------------------

def test_exp2_is_table_2_with_the_papers_recipe_and_u2pls_schedule():
    """Four partitions x (self-training, + BLV with Eq. 4 after every epoch) on ResNet-101 +
    DeepLabV3+, and Table 5's PSPNet-R50 rows at 1/8: 769x769 crops, batch 2 per GPU, SGD 0.01
    wd 5e-4, teacher momentum 0.999, slide evaluation, 200 epochs of the unlabelled images."""
    from mmseg_uda.config_check import check_config
    from mmseg_uda.experiments import EXPERIMENTS
    exp = EXPERIMENTS[2]
    runs = plan(exp, seeds=[0])
    assert len(runs) == 11 and len(plan(exp)) == 33
    epoch_iters = {16: 174, 8: 162, 4: 139, 2: 92}
    for run in runs:
        cfg = build_config(exp, run)
        check_config(cfg)
        fraction = cfg['exp_meta']['partition']['labelled_fraction']
        assert cfg['exp_meta']['partition']['source'] == 'seed0'
        train = cfg['data']['train']
        assert train['type'] == 'UDADataset' and cfg['uda']['type'] == 'SelfTraining'
        assert train['source']['split'] == f'splits/1-{fraction}_seed0/labelled.txt'
        assert train['target']['split'] == f'splits/1-{fraction}_seed0/unlabelled.txt'
        assert 'LoadAnnotations' not in [t['type'] for t in train['target']['pipeline']]
        assert 'cat_max_ratio' not in _pipeline_step(train['target']['pipeline'], 'RandomCrop')
        for part in (train['source'], train['target']):
            assert _pipeline_step(part['pipeline'], 'RandomCrop')['crop_size'] == (769, 769)
        assert cfg['model']['test_cfg']['mode'] == 'slide'
        assert cfg['model']['type'] == 'UDAEncoderDecoder'
        assert cfg['data']['samples_per_gpu'] == 2 and cfg['uda']['alpha'] == 0.999
        opt = cfg['optimizer']
        assert (opt['type'], opt['lr'], opt['weight_decay']) == ('SGD', 0.01, 5e-4)
        assert cfg['lr_config']['power'] == 0.9
        assert cfg['runner']['max_iters'] == 200 * epoch_iters[fraction]
        losses = {loss['type'] for loss in _losses(cfg['model'])}
        if run.spec.blv is not None:
            # The labelled images' counts to start with, then Eq. 4 after every epoch.
            assert losses == {'BLVLoss'}
            assert {loss['class_counts'] for loss in _losses(cfg['model'])} == {
                f'data/cityscapes/splits/1-{fraction}_seed0/sample_class_stats.json'}
            assert cfg['uda']['pseudo_label_observers'] == [dict(
                type='PseudoLabelClassFrequency', interval=epoch_iters[fraction],
                source='unlabelled_pass', smoothing=1.0)]
            assert cfg['pseudo_label_pass']['data']['split'] == train['target']['split']
        else:
            assert 'pseudo_label_pass' not in cfg and 'pseudo_label_observers' not in cfg['uda']
    assert {r.spec.backbone for r in runs if r.tables == ('5-semi',)} == {'r50_psp_769'}


@pytest.mark.parametrize('exp_id', [2, 3])
def test_self_training_sees_unlabelled_images_at_the_labelled_scale(exp_id):
    """The unlabelled pipeline resizes as the labelled one does: experiment 3 once kept the
    Cityscapes base's 1024x512 for its 256x128 unlabelled images, 4x zoomed-in crops."""
    from mmseg_uda.experiments import EXPERIMENTS
    exp = EXPERIMENTS[exp_id]
    runs = [r for r in plan(exp, seeds=[0]) if r.spec.method == 'self_training']
    assert runs
    for run in runs:
        train = build_config(exp, run)['data']['train']
        labelled, unlabelled = (_pipeline_step(part['pipeline'], 'Resize')
                                for part in (train['source'], train['target']))
        assert unlabelled == labelled, run.name


def test_a_published_split_file_gets_its_own_partition_and_run_names(tmp_path):
    import dataclasses

    from mmseg_uda.datasets.partitions import file_source
    from mmseg_uda.experiments import EXPERIMENTS
    listing = tmp_path / '186.txt'
    listing.write_text('aachen/aachen_000000_000019\n')
    source = file_source(listing)
    exp = dataclasses.replace(EXPERIMENTS[2], partition_sources={16: source})
    runs = {r.name: r for r in plan(exp, seeds=[0])}
    named = [n for n in runs if f'split-{source}' in n]
    assert len(named) == 2 and all(n.startswith('cs1-16_') for n in named)
    cfg = build_config(exp, runs[named[0]])
    assert cfg['data']['train']['source']['split'] == f'splits/1-16_{source}/labelled.txt'
    assert cfg['exp_meta']['partition'] == dict(labelled_fraction=16, source=source)


def test_self_training_needs_a_partition():
    exp = _one_run_experiment('cs', 'self_training')
    with pytest.raises(ValueError, match=r"method 'self_training' trains on unlabelled images: "
                                         r"its data set must be a semi-supervised partition"):
        build_config(exp, plan(exp)[0])


def test_lovasz_refuses_pseudo_label_weights():
    from mmseg_uda.experiments import LovaszSetting
    with pytest.raises(ValueError, match='no per-pixel weights, which DACS gives'):
        LovaszSetting().apply(dict(uda=dict(type='DACS'), model={}), 'unused')


def test_write_partitions_draws_missing_ones_and_checks_published_lists(tiny_data, tmp_path):
    import dataclasses

    from data_helpers import copy_domain

    from mmseg_uda.datasets.partitions import file_source, labelled_count, train_images
    from mmseg_uda.experiments import EXPERIMENTS
    from mmseg_uda.experiments.planning import write_partitions
    root = tmp_path / 'data'
    copy_domain(tiny_data, 'cityscapes', str(root))
    exp = EXPERIMENTS[3]
    [run] = [r for r in plan(exp, seeds=[0]) if r.spec.method == 'self_training'
             and r.spec.blv is None]
    cfg = build_config(exp, run, data_root=str(root))
    folder = write_partitions(cfg)
    assert folder == root / 'cityscapes' / 'splits' / '1-8_seed0'
    assert (folder / 'unlabelled.txt').is_file()
    assert write_partitions(build_config(EXP0, plan(EXP0, seeds=[0])[0])) is None  # UDA
    names = train_images(root / 'cityscapes')
    listing = tmp_path / 'list.txt'
    listing.write_text(''.join(f'{n}\n' for n in names[:labelled_count(len(names), 8)]))
    published = dataclasses.replace(exp, partition_sources={8: file_source(listing)})
    [run] = [r for r in plan(published, seeds=[0]) if r.spec.method == 'self_training'
             and r.spec.blv is None]
    cfg = build_config(published, run, data_root=str(root))
    with pytest.raises(FileNotFoundError, match='pass --split-file 8=PATH'):
        write_partitions(cfg)
    other = tmp_path / 'other.txt'
    other.write_text(''.join(f'{n}\n' for n in names[-labelled_count(len(names), 8):]))
    with pytest.raises(ValueError, match='is not the list file-'):
        write_partitions(cfg, {8: other})
    assert write_partitions(cfg, {8: listing}).name == f'1-8_{file_source(listing)}'
