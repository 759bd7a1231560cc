"""The experiment package: what runs exist and how each becomes a config, runs and is read.

- ``specs``: the data (`RunSpec`, `Table`, `Experiment`, ...);
- ``recipes``: data sets, architectures and methods as ``_base_`` files plus overrides;
- ``catalogue``: the experiments (40: the paper's UDA tables; 0: the CPU demo);
- ``composition`` and ``planning``: experiment → runs → fully resolved configs;
- ``sweep``: running the configs without losing work; ``analysis``: seed-averaged tables.

``sweep`` and ``analysis`` read configs and results on disk; they import the catalogue, never
the other way round. The names below are the package's public interface.
"""
from .catalogue import EXP0, EXP0_ITERS, EXP40, EXPERIMENTS, get_experiment
from .composition import (
    BASE_DIR,
    GENERATED_DIR,
    REPO_ROOT,
    WORK_DIRS,
    adapt_to_data_scale,
    compose,
    merged,
    relocate_data,
    source_stats_path,
)
from .planning import base_files, build_config, estimate_gpu_hours, plan, run_name
from .recipes import ARCHS, DATASETS, METHODS, ArchRecipe, DatasetRecipe, MethodRecipe
from .specs import BLVSetting, Experiment, Run, RunSpec, Table, TableRow

__all__ = ['ARCHS', 'ArchRecipe', 'BASE_DIR', 'BLVSetting', 'DATASETS', 'DatasetRecipe', 'EXP0',
           'EXP0_ITERS', 'EXP40', 'EXPERIMENTS', 'Experiment', 'GENERATED_DIR', 'METHODS',
           'MethodRecipe', 'REPO_ROOT', 'Run', 'RunSpec', 'Table', 'TableRow', 'WORK_DIRS',
           'adapt_to_data_scale', 'base_files', 'build_config', 'compose', 'estimate_gpu_hours',
           'get_experiment', 'merged', 'plan', 'relocate_data', 'run_name', 'source_stats_path']
