"""The mean-teacher core that DACS and semi-supervised self-training share: an EMA teacher of
the student, its confidence-weighted pseudo-labels, the supervised step on labelled images."""
from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence

import torch
from mmseg.core import add_prefix

from mmseg_uda.core.evaluation.stream_eval import predictions

from .augment import StrongAugmentation
from .ema import copy_parameters, disable_dropout, ema_alpha, ema_update
from .pseudo_label import PSEUDO_WEIGHTS, pseudo_label_and_weight, zero_row_margins
from .uda_wrapper import UDAWrapper, parse_losses


class TeacherStudent(UDAWrapper):
    """A student, its EMA teacher (``ema_model``) and the pieces of one self-training
    iteration; subclasses write ``forward_train`` from them.

    Args:
        model: segmentor config of the student; the teacher is its copy.
        alpha: the EMA's final momentum (DACS 0.99, DAFormer 0.999, the BLV paper's
            semi-supervised setting 0.999), reached through DACS's ramp (:func:`ema_alpha`).
        pseudo_threshold: softmax confidence that counts a pseudo-label pixel as confident.
        pseudo_weight: one of ``pseudo_label.PSEUDO_WEIGHTS``: 'confident_ratio' (DACS),
            every pixel weighs the batch's fraction of confident pixels; 'confident_pixels',
            each pixel weighs 1 if confident, else 0; 'class_balanced_pixels', the same with
            each class's threshold lowered to keep its most confident half (CBST).
        pseudo_weight_ignore_top / pseudo_weight_ignore_bottom: margins v1, rows of the
            unlabelled crop without pseudo-label weight. Margins v2 come from the data set as a
            ``valid_pseudo_mask``; the two are exclusive.
        color_jitter_strength / color_jitter_p / blur / blur_p / blur_sigma: the strong
            augmentation (:class:`StrongAugmentation`) a subclass may apply.
        pseudo_label_observers / amp / init_cfg: see :class:`UDAWrapper`.

    The teacher is updated right after each optimizer step (:meth:`after_optimizer_step`), so
    the run between two iterations is in a consistent state for checkpoints.
    """

    def __init__(self, model: dict, alpha: float = 0.99, pseudo_threshold: float = 0.968,
                 pseudo_weight_ignore_top: int = 0, pseudo_weight_ignore_bottom: int = 0,
                 color_jitter_strength: float = 0.2, color_jitter_p: float = 0.8,
                 blur: bool = True, blur_p: float = 0.5,
                 blur_sigma: Sequence[float] = (0.15, 1.15),
                 pseudo_label_observers: Sequence[dict] = (),
                 amp: dict | None = None, init_cfg: dict | None = None,
                 pseudo_weight: str = 'confident_ratio') -> None:
        super().__init__(model, amp, pseudo_label_observers, init_cfg)
        self._check_student_interface()
        if pseudo_weight not in PSEUDO_WEIGHTS:
            raise ValueError(f'uda.pseudo_weight={pseudo_weight!r}; choose one of '
                             f'{PSEUDO_WEIGHTS}')
        self.pseudo_weight = pseudo_weight
        self.alpha = alpha
        self.pseudo_threshold = pseudo_threshold
        self.margin_top = pseudo_weight_ignore_top
        self.margin_bottom = pseudo_weight_ignore_bottom
        self.strong_aug = StrongAugmentation(color_jitter_strength, color_jitter_p, blur,
                                             blur_p, blur_sigma)
        self.ema_model = self._frozen_copy(self.model)

    def _check_student_interface(self) -> None:
        params = inspect.signature(self.model.forward_train).parameters
        missing = [p for p in ('seg_weight', 'return_feat') if p not in params]
        if missing:
            raise TypeError(f'{type(self).__name__} needs a segmentor whose forward_train takes '
                            f'{missing} (pixel-weighted pseudo-label loss, features); '
                            f'model.type={type(self.model).__name__} does not. Use '
                            "type='UDAEncoderDecoder' (a drop-in EncoderDecoder) or "
                            "'HRDAEncoderDecoder'.")

    @staticmethod
    def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
        clone = copy.deepcopy(model)
        clone.requires_grad_(False)
        return clone

    def init_weights(self) -> None:
        """Initialise the student; the teacher starts as its copy."""
        self.model.init_weights()
        self.ema_model.load_state_dict(self.model.state_dict())

    def train(self, mode: bool = True) -> TeacherStudent:
        """The teacher keeps dropout/drop-path off (BN stays in train mode, as in DAFormer)."""
        super().train(mode)
        disable_dropout(self.ema_model)
        return self

    def start_teacher(self) -> None:
        """At the first iteration the teacher starts as the student (parameters)."""
        if self.local_iter == 0:
            copy_parameters(self.ema_model, self.model)

    def after_optimizer_step(self) -> None:
        """EMA of the updated student into the teacher, with the ramped momentum of the
        iteration that will use it (DAFormer's update at the start of iteration i + 1)."""
        ema_update(self.ema_model, self.model, ema_alpha(self.local_iter + 1, self.alpha))

    def train_on_source(self, img: torch.Tensor, img_metas: list[dict], gt: torch.Tensor,
                        logs: dict, return_feat: bool = False,
                        retain_graph: bool = False) -> list[torch.Tensor] | None:
        """Cross entropy (or the configured loss) on labelled images, logged as ``src.*``;
        with ``return_feat`` the features are returned (and with ``retain_graph`` their graph
        is kept) for a later loss on them."""
        with self.autocast(img):
            losses = self.model.forward_train(img, img_metas, gt, return_feat=return_feat)
        features = losses.pop('features', None)
        loss, src_logs = parse_losses(losses)
        logs.update(add_prefix(src_logs, 'src'))
        self.backward(loss, retain_graph=retain_graph)
        return features

    @torch.no_grad()
    def make_pseudo_labels(self, target_img: torch.Tensor, target_img_metas: list[dict],
                           valid_pseudo_mask: torch.Tensor | None, logs: dict
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher arg-max labels and their weight (confident ratio, minus the margins)."""
        with self.autocast(target_img):
            logits = self.ema_model.encode_decode(target_img, target_img_metas)
        label, weight, confident_ratio = pseudo_label_and_weight(logits, self.pseudo_threshold,
                                                                 self.pseudo_weight)
        if self.margin_top or self.margin_bottom:
            if valid_pseudo_mask is not None:
                raise ValueError('pseudo-label margins v1 (uda.pseudo_weight_ignore_top/bottom) '
                                 'and v2 (the data set\'s crop_pseudo_margins) are exclusive; '
                                 'configure only one')
            weight = zero_row_margins(weight, self.margin_top, self.margin_bottom)
        elif valid_pseudo_mask is not None:
            weight = weight * valid_pseudo_mask.reshape(weight.shape).to(weight.dtype)
        logs['pseudo.confident_ratio'] = confident_ratio
        logs['pseudo.weight_mean'] = weight.mean()
        return label, weight

    def observers_wanting_pass(self, iteration: int) -> list:
        """The pseudo-label observers that want an unlabelled pass after ``iteration``."""
        return [o for o in self.pseudo_label_observers
                if getattr(o, 'wants_pass', lambda i: False)(iteration)]

    @torch.no_grad()
    def pseudo_label_pass(self, data_loader, iteration: int, observers: list,
                          progress: bool = False) -> int:
        """The teacher labels every image of ``data_loader`` (whole images, its test-time
        inference at the original size) and each observer counts them, then commits (paper
        Sec. 3.3: after every epoch, Eq. 4 over all unlabelled images). The teacher runs in
        eval mode (its own BN statistics) and gets its mode back. Returns the images labelled
        by this process (its shard under DDP)."""
        teacher = self.ema_model
        device = next(teacher.parameters()).device
        seen = 0
        for _, labels, _ in predictions(teacher, data_loader, progress, 'Eq. 4 pass',
                                        lambda: self.stepper.autocast(device)):
            for observer in observers:
                observer.accumulate(labels)
            seen += labels.shape[0]
        for observer in observers:
            observer.commit(iteration)
        return seen

    def train_on_pseudo_labels(self, img: torch.Tensor, img_metas: list[dict],
                               label: torch.Tensor, weight: torch.Tensor, logs: dict,
                               prefix: str) -> None:
        """The loss on pseudo-labelled pixels, each weighted by ``weight`` (B×H×W)."""
        with self.autocast(img):
            losses = self.model.forward_train(img, img_metas, label, seg_weight=weight)
        loss, pseudo_logs = parse_losses(losses)
        logs.update(add_prefix(pseudo_logs, prefix))
        self.backward(loss)
