"""Validate a training config before anything is built: unknown keys, wrong types, hook options.

mmcv accepts any key: ``--cfg-options evalution.interval=1`` (a typo) trains with the default
interval, and ``checkpoint_config.max_keep=1`` fails only at the first save, thousands of
iterations later. Here every ``--cfg-options`` key and every top-level key is checked against
what the run reads, the sections this project consumes itself are checked key by key and for
their types, and each error names the key and the closest valid one.
"""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

# Top-level keys the tools, mmcv's runner and this project read.
TOP_LEVEL_KEYS = frozenset({
    'model', 'uda', 'data', 'optimizer', 'optimizer_config', 'lr_config', 'momentum_config',
    'runner', 'checkpoint_config', 'log_config', 'evaluation', 'custom_hooks', 'dist_params',
    'log_level', 'load_from', 'resume_from', 'workflow', 'cudnn_benchmark', 'seed', 'work_dir',
    'gpu_ids', 'device', 'tf32', 'amp', 'sync_bn', 'find_unused_parameters',
    'opencv_num_threads', 'mp_start_method', 'omp_num_threads', 'mkl_num_threads', 'exp_meta',
    'name', 'pseudo_label_pass',
})
# Helper variables of mmseg's own zoo configs that look like a typo of a key the run reads
# (K-Net's and Swin's configs name their pretrained weights `checkpoint_file`).
ZOO_HELPERS = frozenset({'checkpoint_file'})
# Sections whose keys this project reads itself (the others are checked by their builders:
# model, uda and optimizer keys become constructor arguments, which reject unknown names).
_SECTION_KEYS = {
    'runner': {'type', 'max_iters'},
    'evaluation': {'interval', 'metric'},
    'log_config': {'interval', 'hooks'},
    'amp': {'enabled', 'dtype'},
    'pseudo_label_pass': {'data'},
    'dist_params': {'backend', 'port', 'timeout'},
    'data': {'samples_per_gpu', 'workers_per_gpu', 'train', 'val', 'test', 'persistent_workers',
             'skip_corrupt', 'shuffle', 'pin_memory', 'drop_last', 'train_dataloader',
             'val_dataloader', 'test_dataloader'},
}
_POSITIVE_INTS = ('runner.max_iters', 'evaluation.interval', 'checkpoint_config.interval',
                  'log_config.interval', 'data.samples_per_gpu')
_INTS = ('data.workers_per_gpu', 'checkpoint_config.max_keep_ckpts', 'seed')
_BOOLS = ('data.skip_corrupt', 'amp.enabled', 'tf32', 'sync_bn', 'cudnn_benchmark')


# Keys of earlier versions of this project: what replaced them.
MOVED_KEYS = {
    'uda.pseudo_class_freq_interval':
        "uda.pseudo_label_observers=[dict(type='PseudoLabelClassFrequency', interval=N)] "
        '(paper Eq. 4 is an observer of the pseudo-labels, blv_patches/pseudo_frequency.py)',
}


class ConfigError(ValueError):
    """A config key or value that the run would not read, or could not use."""


def _closest(key: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(key, sorted(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ''


def _checkpoint_keys() -> set[str]:
    """What ``checkpoint_config`` may hold: mmcv's CheckpointHook arguments and the keyword
    arguments it hands to ``runner.save_checkpoint`` at every save."""
    from mmcv.runner import CheckpointHook

    from .runtime.runner import ResumableIterBasedRunner
    keys = set(inspect.signature(CheckpointHook.__init__).parameters) - {'self', 'kwargs'}
    save = set(inspect.signature(ResumableIterBasedRunner.save_checkpoint).parameters)
    return keys | (save - {'self', 'out_dir'}) | {'type'}


def _get(cfg: Mapping, dotted: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in dotted.split('.'):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _as_dict(cfg: Any) -> Mapping:
    return getattr(cfg, '_cfg_dict', cfg)  # an mmcv Config is not a Mapping; its dict is


def check_option_keys(cfg: Any, options: Mapping[str, Any] | None) -> None:
    """Each ``--cfg-options`` key must name something the run reads: a top-level key the
    config has or the tools read, and within the sections of ``_SECTION_KEYS`` a known key."""
    cfg = _as_dict(cfg)
    for dotted in options or {}:
        if dotted in MOVED_KEYS:
            raise ConfigError(f'--cfg-options {dotted}: gone; use {MOVED_KEYS[dotted]}')
        top, _, rest = dotted.partition('.')
        if top not in cfg and top not in TOP_LEVEL_KEYS:
            raise ConfigError(f'--cfg-options {dotted}: {top!r} is not a config key that the '
                              f'run reads{_closest(top, set(cfg) | TOP_LEVEL_KEYS)}')
        if rest:
            _check_section_key(top, rest.split('.')[0], f'--cfg-options {dotted}')


def _check_section_key(section: str, key: str, where: str) -> None:
    allowed = _checkpoint_keys() if section == 'checkpoint_config' else _SECTION_KEYS.get(section)
    if allowed is not None and key not in allowed:
        raise ConfigError(f'{where}: {section}.{key} is not read by this project'
                          f'{_closest(key, allowed)}; {section} takes {sorted(allowed)}')


def check_config(cfg: Any) -> None:
    """Top-level keys, the keys of the sections this project reads, and value types."""
    cfg = _as_dict(cfg)
    for dotted, replacement in MOVED_KEYS.items():
        if _get(cfg, dotted)[0]:
            raise ConfigError(f'config key {dotted} is gone; use {replacement}')
    for key in cfg:
        if key in TOP_LEVEL_KEYS or key in ZOO_HELPERS:
            continue
        # Other top-level names are base-config helpers (pipelines, crop_size, norm_cfg...);
        # one that is nearly a key the run reads is a typo.
        hint = _closest(key, TOP_LEVEL_KEYS)
        if hint and difflib.SequenceMatcher(None, key, hint.split("'")[1]).ratio() >= 0.8:
            raise ConfigError(f'config key {key!r} is not read by the run{hint}')
    for section in (*_SECTION_KEYS, 'checkpoint_config'):
        value = cfg.get(section)
        if isinstance(value, Mapping):
            for key in value:
                _check_section_key(section, key, 'config')
    for dotted in _POSITIVE_INTS + _INTS + _BOOLS:
        present, value = _get(cfg, dotted)
        if not present or value is None:
            continue
        if dotted in _BOOLS:
            if not isinstance(value, bool):
                raise ConfigError(f'{dotted}={value!r}: expected True or False')
        elif not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f'{dotted}={value!r}: expected an integer')
        elif dotted in _POSITIVE_INTS and value < 1:
            raise ConfigError(f'{dotted}={value}: expected an integer >= 1')
    metric = _get(cfg, 'evaluation.metric')[1]
    if metric not in (None, 'mIoU') and metric != ['mIoU']:
        raise ConfigError(f"evaluation.metric={metric!r}: this project evaluates 'mIoU'")
