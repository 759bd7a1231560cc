"""DACS self-training (DAFormer/HRDA recipe) around any segmentor."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mmseg_uda.runtime import is_main_process, total_loss

from .builder import UDA
from .classmix import CLASSMIX_SOURCES, class_mix_masks, mix
from .debug_vis import save_class_mix_debug
from .feature_distance import class_lookup, masked_feature_distance, thing_mask
from .teacher_student import TeacherStudent


@dataclass
class MixedBatch:
    img: torch.Tensor      # B×3×H×W, source pixels where ``mask``, target elsewhere
    label: torch.Tensor    # B×1×H×W, source GT | pseudo-label
    weight: torch.Tensor   # B×H×W, 1 | pseudo weight
    mask: torch.Tensor     # B×1×H×W bool, True = pasted source pixel


@UDA.register_module()
class DACS(TeacherStudent):
    """DACS with DAFormer's additions (EMA ramp, feature distance on thing classes,
    pseudo-label margins).

    One iteration (``forward_train``), in order: source CE (backward); ImageNet feature
    distance (backward); teacher pseudo-labels on the target; ClassMix; strong augmentation of
    the mixed image; mixed CE with pixel weights (backward). ``train_step`` then checks the
    losses, makes the single optimizer step and updates the EMA teacher
    (:meth:`after_optimizer_step`). Updating the teacher right after step i, rather than at the
    start of iteration i+1 as DAFormer does, gives the same teacher for every pseudo-label and
    leaves the run between two iterations in a consistent state, which is what a checkpoint
    (or the NaN guard's last good state) captures.

    The teacher, its pseudo-labels and the source step are :class:`TeacherStudent`'s, which
    semi-supervised self-training shares.

    Args:
        model / alpha / pseudo_threshold / pseudo_weight_ignore_*: see :class:`TeacherStudent`;
            the ImageNet model is another copy of the student.
        imnet_feature_dist_lambda: weight of the feature distance (0 disables it and the
            ImageNet model).
        imnet_feature_dist_classes: classes whose features the feature distance keeps (None:
            every pixel).
        imnet_feature_dist_scale_min_ratio: a feature cell counts as a class if that class
            covers at least this fraction of its pixels.
        classmix_classes_from: 'image' (papers) or 'batch' (DAFormer's released code), see
            :func:`class_mix_masks`.
        color_jitter_strength / color_jitter_p / blur / blur_p / blur_sigma: strong
            augmentation, see :class:`StrongAugmentation`. ``color_jitter_p`` is the probability
            of applying jitter (DAFormer's ``color_jitter_probability=0.2`` is the probability
            of *not* applying it).
        pseudo_label_observers: see :class:`UDAWrapper`; they see the teacher's pseudo-labels
            at the end of each iteration (paper Eq. 4: ``PseudoLabelClassFrequency``).
        debug_img_interval / debug_dir: every N iterations write debug images into debug_dir
            (tools/train.py sets ``WORK_DIR/class_mix_debug``); None: never.
        amp: mixed precision of the forward passes, see :class:`UDAWrapper`.

    Under DDP (``SelfSyncDistributedDataParallel``) the batch statistics of the recipe are
    those of the global batch, as on one GPU: the pseudo-label weight (fraction of confident
    pixels) and the feature-distance normaliser (number of masked cells) are summed over ranks.
    """

    def __init__(self, model: dict, alpha: float = 0.99, pseudo_threshold: float = 0.968,
                 pseudo_weight_ignore_top: int = 0, pseudo_weight_ignore_bottom: int = 0,
                 imnet_feature_dist_lambda: float = 0.0,
                 imnet_feature_dist_classes: Sequence[int] | None = None,
                 imnet_feature_dist_scale_min_ratio: float | None = None,
                 classmix_classes_from: str = 'image', color_jitter_strength: float = 0.2,
                 color_jitter_p: float = 0.8, blur: bool = True, blur_p: float = 0.5,
                 blur_sigma: Sequence[float] = (0.15, 1.15),
                 pseudo_label_observers: Sequence[dict] = (),
                 debug_img_interval: int | None = None, debug_dir: str | None = None,
                 amp: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(model, alpha, pseudo_threshold, pseudo_weight_ignore_top,
                         pseudo_weight_ignore_bottom, color_jitter_strength, color_jitter_p,
                         blur, blur_p, blur_sigma, pseudo_label_observers, amp, init_cfg)
        if classmix_classes_from not in CLASSMIX_SOURCES:
            raise ValueError(f'uda.classmix_classes_from={classmix_classes_from!r}; choose one '
                             f'of {CLASSMIX_SOURCES}')
        self.classmix_classes_from = classmix_classes_from
        self.debug_img_interval = debug_img_interval
        self.debug_dir = debug_dir

        self.feature_distance_lambda = imnet_feature_dist_lambda
        self.imnet_model = self._frozen_copy(self.model) if self.feature_distance_enabled else None
        self.feature_distance_min_ratio = imnet_feature_dist_scale_min_ratio
        if self.feature_distance_enabled and imnet_feature_dist_classes is not None:
            if imnet_feature_dist_scale_min_ratio is None:
                raise ValueError('uda.imnet_feature_dist_classes needs '
                                 'uda.imnet_feature_dist_scale_min_ratio (DAFormer: 0.75)')
            self.register_buffer('feature_distance_class_lut',
                                 class_lookup(imnet_feature_dist_classes), persistent=False)
        else:
            self.feature_distance_class_lut = None

    @property
    def feature_distance_enabled(self) -> bool:
        return self.feature_distance_lambda > 0

    def init_weights(self) -> None:
        """Initialise the student; the teacher and the ImageNet model start as its copies, so
        the ImageNet model holds the pretrained backbone (or the same random init without one)."""
        super().init_weights()
        if self.imnet_model is not None:
            self.imnet_model.load_state_dict(self.model.state_dict())

    def train(self, mode: bool = True) -> DACS:
        """The teacher as in :meth:`TeacherStudent.train`; the ImageNet model is always in
        eval mode."""
        super().train(mode)
        if self.imnet_model is not None:
            self.imnet_model.eval()
        return self

    # --- one iteration, top to bottom --------------------------------------------------------

    def forward_train(self, img: torch.Tensor, img_metas: list[dict],
                      gt_semantic_seg: torch.Tensor, target_img: torch.Tensor,
                      target_img_metas: list[dict],
                      valid_pseudo_mask: torch.Tensor | None = None,
                      **unused_target_data) -> dict[str, torch.Tensor]:
        """Runs the three backward passes of one iteration and returns its log scalars.

        ``unused_target_data`` (e.g. target labels a pipeline happens to load) is never used.
        """
        logs: dict[str, torch.Tensor] = {}
        self.start_teacher()
        src_feat = self.train_on_source(img, img_metas, gt_semantic_seg, logs)
        if self.feature_distance_enabled:
            self.train_feature_distance(img, gt_semantic_seg, src_feat, logs)
        del src_feat
        pseudo_label, pseudo_weight = self.make_pseudo_labels(
            target_img, target_img_metas, valid_pseudo_mask, logs)
        mixed = self.class_mix(img, gt_semantic_seg, target_img, pseudo_label, pseudo_weight)
        mixed.img = self.strong_aug(mixed.img, img_metas[0]['img_norm_cfg'])
        self.train_on_mixed(mixed, img_metas, logs)
        self.observe_pseudo_labels(pseudo_label)
        logs['loss'] = total_loss(logs)
        if self._is_debug_iteration():
            self.save_debug_images(img, gt_semantic_seg, target_img, pseudo_label, mixed,
                                   img_metas[0]['img_norm_cfg'])
        return logs

    def train_on_source(self, img: torch.Tensor, img_metas: list[dict], gt: torch.Tensor,
                        logs: dict, return_feat: bool = True,
                        retain_graph: bool | None = None) -> list[torch.Tensor]:
        """Source CE; its graph is kept for feature distance, which reuses the source features."""
        if retain_graph is None:
            retain_graph = self.feature_distance_enabled
        return super().train_on_source(img, img_metas, gt, logs, return_feat, retain_graph)

    def train_feature_distance(self, img: torch.Tensor, gt: torch.Tensor,
                               features: list, logs: dict) -> None:
        """λ × the feature distance between the student's and the frozen ImageNet model's
        last-stage features, summed over the compared scales (one, or both with HRDA's
        ``feature_scale='all'``)."""
        loss = 0
        for feat, ref, label in self._feature_distance_pairs(img, gt, features):
            mask = None
            if self.feature_distance_class_lut is not None:
                mask = thing_mask(label, feat.shape[-2:], self.feature_distance_class_lut,
                                  self.feature_distance_min_ratio, self.num_classes)
            loss = loss + masked_feature_distance(feat, ref, mask)
        loss = self.feature_distance_lambda * loss
        logs['src.loss_imnet_feat_dist'] = loss.detach()
        self.backward(loss)

    @torch.no_grad()
    def _imnet_features(self, img: torch.Tensor, **kwargs) -> list:
        with self.autocast(img):
            return self.imnet_model.extract_feat(img, **kwargs)

    def _feature_distance_pairs(self, img: torch.Tensor, gt: torch.Tensor, features: list
                                ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(student feature, ImageNet feature, label) of the last stage, per compared scale.

        HRDA's detail features cover only the student's detail crop of the source pass, so the
        ImageNet model and the label are cropped to that same box.
        """
        hr_box = getattr(self.model, 'last_train_crop_box', None)
        if hr_box is None:  # a single-scale segmentor
            return [(features[-1], self._imnet_features(img)[-1], gt)]
        model = self.model
        imnet = self._imnet_features(img, hr_box=hr_box)
        hr_gt = hr_box.scaled(1 / model.hr_scale, 'HRDA detail crop').crop(gt)
        if model.feature_scale == 'all':
            return [(features[0][-1], imnet[0][-1], gt), (features[1][-1], imnet[1][-1], hr_gt)]
        label = gt if model.feature_scale == model.lr_scale else hr_gt
        return [(features[-1], imnet[-1], label)]

    @torch.no_grad()
    def class_mix(self, img: torch.Tensor, gt: torch.Tensor, target_img: torch.Tensor,
                  pseudo_label: torch.Tensor, pseudo_weight: torch.Tensor) -> MixedBatch:
        """Paste half of the source classes onto the target: image, label and weight alike."""
        mask = class_mix_masks(gt, self.classmix_classes_from)
        return MixedBatch(
            img=mix(mask, img, target_img),
            label=mix(mask, gt, pseudo_label.unsqueeze(1)),
            weight=mix(mask.squeeze(1), torch.ones_like(pseudo_weight), pseudo_weight),
            mask=mask)

    def train_on_mixed(self, mixed: MixedBatch, img_metas: list[dict], logs: dict) -> None:
        """CE on the mixed image, every pixel weighted by ``mixed.weight``."""
        self.train_on_pseudo_labels(mixed.img, img_metas, mixed.label, mixed.weight, logs, 'mix')

    # --- debug visualisation -----------------------------------------------------------------

    def _is_debug_iteration(self) -> bool:
        if not self.debug_img_interval or self.debug_dir is None:
            return False
        if not is_main_process():
            return False
        return self.local_iter % self.debug_img_interval == 0

    @torch.no_grad()
    def save_debug_images(self, img, gt, target_img, pseudo_label, mixed: MixedBatch,
                          img_norm_cfg: dict) -> None:
        save_class_mix_debug(
            self.debug_dir, self.local_iter, img_norm_cfg,
            dict(source=img, target=target_img, source_gt=gt, pseudo_label=pseudo_label,
                 mixed_img=mixed.img, mix_mask=mixed.mask, mixed_label=mixed.label,
                 weight=mixed.weight))
