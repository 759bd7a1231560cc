"""Shared helpers for the model tests: configs, tiny batches, original-layout checkpoints."""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from mmcv import Config, ConfigDict
from mmcv.utils import get_logger
from mmseg.models import build_segmentor

import mmseg_uda  # noqa: F401  (registers the models)

MODEL_CONFIGS = Path(__file__).resolve().parents[1] / 'configs' / '_base_' / 'models'

# mmcv logs one line per parameter when initialising; keep test output readable.
get_logger('mmcv').setLevel(logging.WARNING)


def model_cfg(name: str, **overrides) -> Config:
    """``configs/_base_/models/<name>.py`` with ``overrides`` merged into ``cfg.model``."""
    cfg = Config.fromfile(str(MODEL_CONFIGS / f'{name}.py'))
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()})
    return cfg


def build_model(cfg: Config | str, seed: int = 0, **overrides) -> torch.nn.Module:
    """A randomly initialised segmentor from a config (or a config name)."""
    if isinstance(cfg, str):
        cfg = model_cfg(cfg, **overrides)
    torch.manual_seed(seed)
    model = build_segmentor(cfg.model)
    model.init_weights()
    return model


def fake_batch(batch: int = 2, size: int | tuple[int, int] = 64, num_classes: int = 19,
               seed: int = 0) -> tuple[torch.Tensor, list[dict], torch.Tensor]:
    """Random normalised images, mmseg img_metas, and labels with some ignored (255) pixels."""
    h, w = (size, size) if isinstance(size, int) else size
    gen = torch.Generator().manual_seed(seed)
    img = torch.randn(batch, 3, h, w, generator=gen)
    gt = torch.randint(0, num_classes, (batch, 1, h, w), generator=gen)
    gt[:, :, : h // 8] = 255
    meta = dict(img_shape=(h, w, 3), ori_shape=(h, w, 3), pad_shape=(h, w, 3),
                scale_factor=1.0, flip=False)
    return img, [dict(meta) for _ in range(batch)], gt


def slide_inference(model, img, metas, crop=(64, 64), stride=(32, 32),
                    batched=True) -> torch.Tensor:
    """``model.inference`` in test_cfg slide mode (eval, no grad), windows batched or looped."""
    model.eval()
    model.test_cfg = ConfigDict(mode='slide', crop_size=crop, stride=stride,
                                batched_slide=batched)
    with torch.no_grad():
        return model.inference(img, metas, rescale=True)


def segformer_mit_state_dict(embed_dims=(32, 64, 160, 256), num_layers=(1, 1, 1, 1),
                             sr_ratios=(8, 4, 2, 1), patch_sizes=(7, 3, 3, 3), mlp_ratio=4,
                             num_classes=1000, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the names and shapes of an original SegFormer ``mit_b*.pth``.

    Written from SegFormer's ``mix_transformer.py`` layout (not from our converter): per stage
    ``patch_embed{i}`` (conv + LayerNorm), ``block{i}.{j}`` (norm1, attn.q, attn.kv, attn.proj,
    attn.sr + attn.norm when sr_ratio > 1, norm2, mlp.fc1, mlp.dwconv.dwconv, mlp.fc2),
    ``norm{i}``; plus the ImageNet classifier ``head``.
    """
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    state: dict[str, torch.Tensor] = {}

    def linear(name, c_in, c_out):
        state[f'{name}.weight'], state[f'{name}.bias'] = rand(c_out, c_in), rand(c_out)

    def norm(name, c):
        state[f'{name}.weight'], state[f'{name}.bias'] = rand(c), rand(c)

    c_prev = 3
    for i, (c, depth, sr, k) in enumerate(zip(embed_dims, num_layers, sr_ratios, patch_sizes), 1):
        state[f'patch_embed{i}.proj.weight'] = rand(c, c_prev, k, k)
        state[f'patch_embed{i}.proj.bias'] = rand(c)
        norm(f'patch_embed{i}.norm', c)
        hidden = c * mlp_ratio
        for j in range(depth):
            block = f'block{i}.{j}'
            norm(f'{block}.norm1', c)
            linear(f'{block}.attn.q', c, c)
            linear(f'{block}.attn.kv', c, 2 * c)
            linear(f'{block}.attn.proj', c, c)
            if sr > 1:
                state[f'{block}.attn.sr.weight'] = rand(c, c, sr, sr)
                state[f'{block}.attn.sr.bias'] = rand(c)
                norm(f'{block}.attn.norm', c)
            norm(f'{block}.norm2', c)
            linear(f'{block}.mlp.fc1', c, hidden)
            state[f'{block}.mlp.dwconv.dwconv.weight'] = rand(hidden, 1, 3, 3)
            state[f'{block}.mlp.dwconv.dwconv.bias'] = rand(hidden)
            linear(f'{block}.mlp.fc2', hidden, c)
        norm(f'norm{i}', c)
        c_prev = c
    linear('head', embed_dims[-1], num_classes)
    return state
