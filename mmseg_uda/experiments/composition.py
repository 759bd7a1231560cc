"""Config composition: ``_base_`` files plus overrides -> one plain dict, and the edits a
composed config may need (data roots, data scale, the source's class statistics).

Nothing here knows the recipes; `planning.build_config` chooses the bases and overrides.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mmcv import Config

from blv_patches.class_frequency import STATS_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_DIR = REPO_ROOT / 'configs' / '_base_'
GENERATED_DIR = REPO_ROOT / 'configs' / 'generated'
WORK_DIRS = Path('work_dirs')  # relative to the repository root, where runs execute


def mmseg_zoo() -> Path:
    """mmseg's config zoo as the installed package ships it (``mmseg/.mim/configs``)."""
    import mmseg
    zoo = Path(mmseg.__file__).resolve().parent / '.mim' / 'configs'
    if not zoo.is_dir():
        raise FileNotFoundError(f'mmseg\'s config zoo is not in the installed package ({zoo}); '
                                'reinstall mmsegmentation 0.30 with `make install`')
    return zoo


def config_dicts(node: Any) -> Iterator[dict]:
    """Every dict at or below ``node`` (through dicts and lists), each before its children, so
    a caller may change a dict's values as it receives it."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from config_dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from config_dicts(value)


def set_num_classes(node: Any, num_classes: int) -> None:
    """Set every ``num_classes`` below ``node`` (every head, nested ones included)."""
    for d in config_dicts(node):
        if 'num_classes' in d:
            d['num_classes'] = num_classes


def replace_norm(node: Any, old: str, new: str) -> None:
    """Every ``norm_cfg`` of type ``old`` below ``node`` becomes type ``new``."""
    for d in config_dicts(node):
        if d.get('type') == old and 'requires_grad' in d:
            d['type'] = new


def merged(*parts: dict) -> dict:
    """Deep-merge config fragments left to right with mmcv's rules (``_delete_`` included)."""
    out: dict = {}
    for part in parts:
        out = Config._merge_a_into_b(copy.deepcopy(part), out)
    return out


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



def relocate_data(cfg: dict, new_root: str) -> None:
    """Point every data set at ``new_root/<name>`` (data/gta/ -> NEW_ROOT/gta/)."""
    for node in (d for d in config_dicts(cfg.get('data', {})) if 'data_root' in d):
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
    """The labelled training set's ``sample_class_stats.json``, from which BLV takes class
    counts: the source's, or a split's (a semi-supervised partition keeps the statistics of
    its labelled images beside its lists)."""
    train = cfg.get('data', {}).get('train', {})
    source = train.get('source', train)
    if 'data_root' not in source:
        raise KeyError('config has no data.train.source.data_root (nor data.train.data_root); '
                       'cannot locate the source class statistics for BLV')
    if source.get('split'):
        return os.path.join(source['data_root'], os.path.dirname(source['split']), STATS_FILE)
    return os.path.join(source['data_root'], STATS_FILE)

