"""Shared helpers of the experiments/analysis tests: fabricated results and work dirs."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from mmseg_uda.analysis import CLASSES
from mmseg_uda.experiments import REPO_ROOT, BLVSetting, RunSpec

# For the tiny synthetic set (128x64 target images, 16 per source): its linear size relative to
# the real data would be 1/16, but with so few images the rarest class never reaches the
# correspondingly scaled min_pixels (12), so a smaller factor keeps RCS's threshold at 1 pixel.
TINY_SCALE = 0.02


def load_script(relpath: str) -> ModuleType:
    """Import a repository script (run_experiments.py, tools/*.py) to call its main()."""
    path = REPO_ROOT / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
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
