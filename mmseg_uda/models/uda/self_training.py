"""Semi-supervised mean-teacher self-training (the BLV paper's Sec. 4.2 baseline)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from mmseg_uda.runtime import total_loss

from .builder import UDA
from .teacher_student import TeacherStudent


@UDA.register_module()
class SelfTraining(TeacherStudent):
    """Classical self-training with a mean teacher, "without any other tricks" (BLV paper,
    Sec. 4.2): each batch pairs labelled images with unlabelled ones of the same domain.

    One iteration: the loss on the labelled images (backward); the teacher's pseudo-labels of
    the unlabelled images, weighted by their confident ratio as in DACS; the student's loss on
    the same unlabelled images against them, times ``unlabelled_weight`` (backward); one
    optimizer step; the EMA update of the teacher. The pseudo-labels go to the observers (paper
    Eq. 4, ``PseudoLabelClassFrequency``).

    Args:
        model / alpha / pseudo_threshold / pseudo_weight / pseudo_weight_ignore_*: see
            :class:`TeacherStudent` (the paper: teacher momentum 0.999).
        strong_augmentation: colour jitter and blur (DACS's, :class:`StrongAugmentation`) on
            the student's view of the unlabelled images. Off by default: the paper's baseline
            has no perturbation beyond the data pipeline's, which teacher and student share.
        unlabelled_weight: weight of the pseudo-label loss.
        color_jitter_* / blur*: the strong augmentation's settings.
        pseudo_label_observers / amp / init_cfg: see :class:`UDAWrapper`.

    Takes the batches of a ``UDADataset`` whose source is the labelled part and whose target
    is the unlabelled part (``mmseg_uda.datasets.partitions``).
    """

    def __init__(self, model: dict, alpha: float = 0.999, pseudo_threshold: float = 0.968,
                 pseudo_weight_ignore_top: int = 0, pseudo_weight_ignore_bottom: int = 0,
                 strong_augmentation: bool = False, unlabelled_weight: float = 1.0,
                 color_jitter_strength: float = 0.2, color_jitter_p: float = 0.8,
                 blur: bool = True, blur_p: float = 0.5,
                 blur_sigma: Sequence[float] = (0.15, 1.15),
                 pseudo_label_observers: Sequence[dict] = (),
                 pseudo_weight: str = 'confident_ratio',
                 amp: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(model, alpha, pseudo_threshold, pseudo_weight_ignore_top,
                         pseudo_weight_ignore_bottom, color_jitter_strength, color_jitter_p,
                         blur, blur_p, blur_sigma, pseudo_label_observers, amp, init_cfg,
                         pseudo_weight)
        if unlabelled_weight < 0:
            raise ValueError(f'uda.unlabelled_weight={unlabelled_weight}: must be >= 0')
        self.strong_augmentation = strong_augmentation
        self.unlabelled_weight = unlabelled_weight

    def forward_train(self, img: torch.Tensor, img_metas: list[dict],
                      gt_semantic_seg: torch.Tensor, target_img: torch.Tensor,
                      target_img_metas: list[dict],
                      valid_pseudo_mask: torch.Tensor | None = None,
                      **unused_target_data) -> dict[str, torch.Tensor]:
        """The two backward passes of one iteration; returns its log scalars. The labelled
        images are the UDA batch's source, the unlabelled ones its target."""
        logs: dict[str, torch.Tensor] = {}
        self.start_teacher()
        self.train_on_source(img, img_metas, gt_semantic_seg, logs)
        pseudo_label, pseudo_weight = self.make_pseudo_labels(
            target_img, target_img_metas, valid_pseudo_mask, logs)
        student_view = target_img
        if self.strong_augmentation:
            student_view = self.strong_aug(target_img, target_img_metas[0]['img_norm_cfg'])
        self.train_on_pseudo_labels(student_view, target_img_metas, pseudo_label.unsqueeze(1),
                                    pseudo_weight * self.unlabelled_weight, logs, 'unlabelled')
        self.observe_pseudo_labels(pseudo_label)
        logs['loss'] = total_loss(logs)
        return logs
