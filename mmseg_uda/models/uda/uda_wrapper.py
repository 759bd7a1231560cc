"""Base class of the UDA training procedures: a student segmentor plus the step around it."""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn
from mmseg.models.builder import build_segmentor
from mmseg.models.segmentors import BaseSegmentor
from torch.optim import Optimizer

from mmseg_uda.runtime import (
    TrainStepper,
    check_finite_losses,
    fp32_outputs,
    is_distributed,
    is_loss_key,
    total_loss,
)

from .builder import PSEUDO_LABEL_OBSERVERS


def parse_losses(losses: Mapping) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """mmseg's rule: the loss is the sum of every entry whose key contains 'loss'.

    Unlike mmseg's ``_parse_losses`` the log values stay detached tensors on the device; they
    are copied to the host once per iteration by :func:`scalars_to_host`.
    """
    logs = {}
    for key, value in losses.items():
        if isinstance(value, torch.Tensor):
            logs[key] = value.mean()
        elif isinstance(value, (list, tuple)):
            logs[key] = sum(v.mean() for v in value)
        else:
            raise TypeError(f'loss {key!r} is a {type(value).__name__}, not a tensor or a '
                            'list of tensors')
    if not any(is_loss_key(k) for k in logs):
        raise ValueError(f'no loss in {sorted(losses)}: mmseg sums the keys that contain '
                         '"loss"; check the decode head\'s loss_decode.loss_name')
    return total_loss(logs), {k: v.detach() for k, v in logs.items()}


def scalars_to_host(logs: Mapping[str, torch.Tensor | float]) -> dict[str, float]:
    """All log scalars in one device→host copy (and one all-reduce mean under DDP)."""
    keys = list(logs)
    tensors = [v for v in logs.values() if isinstance(v, torch.Tensor)]
    if not tensors:
        return {k: float(v) for k, v in logs.items()}
    device = tensors[0].device
    stacked = torch.stack([torch.as_tensor(logs[k], dtype=torch.float32, device=device)
                           .reshape(()) for k in keys])
    if is_distributed():
        dist.all_reduce(stacked.div_(dist.get_world_size()))
    return dict(zip(keys, stacked.tolist()))


class UDAWrapper(BaseSegmentor):
    """A student segmentor (``self.model``) and the training step around it.

    Inference and evaluation always use the student, as in DAFormer (DAFormer#23). The wrapper
    runs its own backward passes and its single optimizer step in :meth:`train_step`, so the
    runner's ``optimizer_config`` must be None. ``local_iter`` counts the finished training
    iterations and is saved in checkpoints (``get_extra_state``), so a resumed run continues
    the EMA ramp and every interval where it stopped.

    ``amp=dict(enabled=True, dtype='bf16' | 'fp16')`` runs the networks' forward passes
    (wrapped in :meth:`autocast`) in low precision; their outputs are cast back to fp32, so
    losses, BLV's noise and the EMA stay fp32 (``mmseg_uda.runtime.stepper``).

    ``pseudo_label_observers``: configs of ``PSEUDO_LABEL_OBSERVERS`` (paper Eq. 4:
    ``dict(type='PseudoLabelClassFrequency', interval=N)``). A method that makes pseudo-labels
    hands them to :meth:`observe_pseudo_labels` once per iteration; each observer has attached
    to the student first. Observers are submodules, so their state is checkpointed.
    """

    def __init__(self, model: dict, amp: dict | None = None,
                 pseudo_label_observers: Sequence[dict] = (),
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.model = build_segmentor(copy.deepcopy(model))
        fp32_outputs(self.model)  # copies of the student (teacher, ImageNet model) keep them
        self.stepper = TrainStepper.from_cfg(amp)
        self.local_iter = 0
        self.pseudo_label_observers = nn.ModuleList(
            PSEUDO_LABEL_OBSERVERS.build(cfg) for cfg in pseudo_label_observers)
        for observer in self.pseudo_label_observers:
            observer.attach(self.model)

    def observe_pseudo_labels(self, pseudo_label: torch.Tensor) -> None:
        """The hook point \"pseudo-labels of this iteration\": every observer sees them, with
        the number of the iteration (1-based) that made them."""
        for observer in self.pseudo_label_observers:
            observer.observe(pseudo_label, self.local_iter + 1)

    # --- the student ---------------------------------------------------------------------

    def get_model(self) -> BaseSegmentor:
        return self.model

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    @property
    def align_corners(self) -> bool:
        return self.model.align_corners

    def init_weights(self) -> None:
        self.model.init_weights()

    def extract_feat(self, img: torch.Tensor):
        return self.model.extract_feat(img)

    def encode_decode(self, img: torch.Tensor, img_metas: list[dict]) -> torch.Tensor:
        return self.model.encode_decode(img, img_metas)

    def inference(self, img: torch.Tensor, img_meta: list[dict], rescale: bool) -> torch.Tensor:
        return self.model.inference(img, img_meta, rescale)

    def simple_test(self, img: torch.Tensor, img_meta: list[dict], rescale: bool = True):
        return self.model.simple_test(img, img_meta, rescale)

    def aug_test(self, imgs: list[torch.Tensor], img_metas: list[list[dict]],
                 rescale: bool = True):
        return self.model.aug_test(imgs, img_metas, rescale)

    # --- checkpointed state ----------------------------------------------------------------

    def get_extra_state(self) -> torch.Tensor:
        # A CPU tensor: mmcv's checkpoint writer calls .cpu() on every state_dict value.
        return torch.tensor(self.local_iter, dtype=torch.int64)

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.local_iter = int(state)

    def training_state_dict(self) -> dict:
        """Training state outside ``state_dict`` (``ResumableIterBasedRunner`` saves it)."""
        return dict(stepper=self.stepper.state_dict())

    def load_training_state_dict(self, state: dict) -> None:
        self.stepper.load_state_dict(state['stepper'])

    # --- one training iteration -------------------------------------------------------------

    def train_step(self, data_batch: dict, optimizer: Optimizer, **kwargs) -> dict:
        """zero_grad → ``forward_train`` (which runs the backward passes) → NaN guard → one
        optimizer step → :meth:`after_optimizer_step`.

        A NaN or inf loss term raises ``NonFiniteLossError`` before the step, so nothing of
        the iteration has changed the weights, the optimizer or the teacher. The terms are
        checked after averaging over ranks, so every rank stops at the same iteration.
        """
        optimizer.zero_grad(set_to_none=True)
        logs = self.forward_train(**data_batch)
        log_vars = scalars_to_host(logs)
        check_finite_losses({k: v for k, v in log_vars.items() if is_loss_key(k)},
                            self.local_iter)
        self.optimizer_step(optimizer)
        self.after_optimizer_step()
        self.local_iter += 1
        return dict(log_vars=log_vars, num_samples=len(data_batch['img_metas']))

    def autocast(self, tensor: torch.Tensor):
        """Context for the networks' forward passes: autocast when AMP is on, else nothing."""
        return self.stepper.autocast(tensor.device)

    def backward(self, loss: torch.Tensor, retain_graph: bool = False) -> None:
        """Every backward pass of the procedure goes through here (fp16 loss scaling)."""
        self.stepper.backward(loss, retain_graph=retain_graph)

    def optimizer_step(self, optimizer: Optimizer) -> None:
        """The iteration's single optimizer step, after averaging the student's gradients
        over ranks (``runtime/ddp.py``: why DDP's own hooks cannot do it)."""
        self.stepper.step(optimizer, self.model.parameters())

    def after_optimizer_step(self) -> None:
        """What follows the step within the same iteration (DACS: the teacher's EMA update)."""
