"""The experiment package: what runs exist and how each becomes a config, runs and is read.

- ``specs``: the data (`RunSpec`, `Table`, `Experiment`, ...);
- ``recipes``: data sets, architectures and methods as ``_base_`` files plus overrides;
- ``catalogue``: the experiments (40/41: the paper's UDA tables; 1: fully supervised; 2:
  semi-supervised; 0: the CPU demo);
- ``composition`` and ``planning``: experiment → runs → fully resolved configs;
- ``sweep``: running the configs without losing work; ``analysis``: seed-averaged tables.

``sweep`` and ``analysis`` read configs and results on disk; they import the catalogue, never
the other way round. The names below are the package's public interface.
"""
from .catalogue import EXP0, EXP0_ITERS, EXP1, EXP2, EXP40, EXP41, EXPERIMENTS, get_experiment
from .composition import (
    BASE_DIR,
    GENERATED_DIR,
    REPO_ROOT,
    WORK_DIRS,
    adapt_to_data_scale,
    compose,
    config_dicts,
    merged,
    relocate_data,
    source_stats_path,
)
from .losses import (
    CE,
    LOSS_KINDS,
    BLVSetting,
    CESetting,
    LASetting,
    LossSetting,
    LovaszSetting,
    RWSetting,
)
from .planning import base_files, build_config, estimate_gpu_hours, plan, run_name
from .recipes import ARCHS, DATASETS, METHODS, ArchRecipe, DatasetRecipe, MethodRecipe
from .specs import Experiment, Run, RunSpec, Table, TableRow

__all__ = ['adapt_to_data_scale', 'ArchRecipe', 'ARCHS', 'BASE_DIR', 'base_files', 'BLVSetting',
           'build_config', 'CE', 'CESetting', 'compose', 'config_dicts', 'DatasetRecipe',
           'DATASETS', 'estimate_gpu_hours', 'EXP0', 'EXP0_ITERS', 'EXP1', 'EXP2', 'EXP40', 'EXP41',
           'Experiment', 'EXPERIMENTS', 'GENERATED_DIR', 'get_experiment', 'LASetting',
           'LOSS_KINDS', 'LossSetting', 'LovaszSetting', 'merged', 'MethodRecipe', 'METHODS',
           'plan', 'relocate_data', 'REPO_ROOT', 'Run', 'run_name', 'RunSpec', 'RWSetting',
           'source_stats_path', 'Table', 'TableRow', 'WORK_DIRS']
