"""Shared helpers of the experiments/analysis tests: fabricated results and work dirs."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from mmseg_uda.datasets.synthetic import TINY_DATA_SCALE as TINY_SCALE  # noqa: F401
from mmseg_uda.experiments import REPO_ROOT, BLVSetting, RunSpec
from mmseg_uda.experiments.analysis import CLASSES


def load_script(relpath: str) -> ModuleType:
    """Import a repository script (run_experiments.py, tools/*.py) to call its main()."""
    path = REPO_ROOT / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def meta(spec: RunSpec, seed: int, exp: int = 40, tables: tuple = (3,)) -> dict:
    return dict(exp=exp, tables=list(tables), **spec.meta(), seed=seed)


def write_final_metrics(work_dir: Path, spec: RunSpec, seed: int, per_class: dict[str, float],
                        exp: int = 40, iteration: int = 40000) -> Path:
    """A final_metrics.json as tools/train.py writes it (its 'miou' is deliberately stale, so
    tests prove the analysis recomputes every mean from the per-class values)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / 'final_metrics.json'
    path.write_text(json.dumps(dict(exp_meta=meta(spec, seed, exp), iter=iteration,
                                    per_class_iou=per_class, miou=-1.0)))
    return path


def index_iou(offset: float = 0.0) -> dict[str, float]:
    """IoU of class i = i + offset: sums over class subsets are easy to do by hand."""
    return {c: float(i) + offset for i, c in enumerate(CLASSES)}


R101_GTA = RunSpec('gta2cs', 'daformer', 'r101')
R101_GTA_BLV = RunSpec('gta2cs', 'daformer', 'r101', BLVSetting(6.0))
R101_SYN = RunSpec('syn2cs', 'daformer', 'r101')
