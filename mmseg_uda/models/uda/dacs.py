"""DACS self-training (DAFormer/HRDA recipe) around any segmentor."""
from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from mmseg.core import add_prefix

from mmseg_uda.runtime import is_main_process, total_loss

from .augment import StrongAugmentation
from .builder import UDA
from .classmix import CLASSMIX_SOURCES, class_mix_masks, mix
from .debug_vis import save_class_mix_debug
from .ema import copy_parameters, disable_dropout, ema_alpha, ema_update
from .feature_distance import class_lookup, masked_feature_distance, thing_mask
from .pseudo_label import pseudo_label_and_weight, zero_row_margins
from .uda_wrapper import UDAWrapper, parse_losses


@dataclass
class MixedBatch:
    img: torch.Tensor      # B×3×H×W, source pixels where ``mask``, target elsewhere
    label: torch.Tensor    # B×1×H×W, source GT | pseudo-label
    weight: torch.Tensor   # B×H×W, 1 | pseudo weight
    mask: torch.Tensor     # B×1×H×W bool, True = pasted source pixel


@UDA.register_module()
class DACS(UDAWrapper):
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

    Args:
        model: segmentor config of the student; the teacher and the ImageNet model are copies.
        alpha: the EMA's final momentum (0.99 in DACS, 0.999 in DAFormer's final recipe).
        pseudo_threshold: softmax confidence that counts a pseudo-label pixel as confident.
        pseudo_weight_ignore_top / pseudo_weight_ignore_bottom: margins v1, rows of the target
            crop without pseudo-label weight. Margins v2 come from the data set as a
            ``valid_pseudo_mask``; the two are exclusive.
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
        super().__init__(model, amp, pseudo_label_observers, init_cfg)
        self._check_student_interface()
        if classmix_classes_from not in CLASSMIX_SOURCES:
            raise ValueError(f'uda.classmix_classes_from={classmix_classes_from!r}; choose one '
                             f'of {CLASSMIX_SOURCES}')
        self.alpha = alpha
        self.pseudo_threshold = pseudo_threshold
        self.margin_top = pseudo_weight_ignore_top
        self.margin_bottom = pseudo_weight_ignore_bottom
        self.classmix_classes_from = classmix_classes_from
        self.strong_aug = StrongAugmentation(color_jitter_strength, color_jitter_p, blur,
                                             blur_p, blur_sigma)
        self.debug_img_interval = debug_img_interval
        self.debug_dir = debug_dir

        self.ema_model = self._frozen_copy(self.model)
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

    def _check_student_interface(self) -> None:
        params = inspect.signature(self.model.forward_train).parameters
        missing = [p for p in ('seg_weight', 'return_feat') if p not in params]
        if missing:
            raise TypeError(f'DACS needs a segmentor whose forward_train takes {missing} '
                            f'(pixel-weighted pseudo-label loss, feature distance features); '
                            f'model.type={type(self.model).__name__} does not. Use '
                            "type='UDAEncoderDecoder' (a drop-in EncoderDecoder) or "
                            "'HRDAEncoderDecoder'.")

    @staticmethod
    def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
        clone = copy.deepcopy(model)
        clone.requires_grad_(False)
        return clone

    @property
    def feature_distance_enabled(self) -> bool:
        return self.feature_distance_lambda > 0

    def init_weights(self) -> None:
        """Initialise the student; the teacher and the ImageNet model start as its copies, so
        the ImageNet model holds the pretrained backbone (or the same random init without one)."""
        self.model.init_weights()
        self.ema_model.load_state_dict(self.model.state_dict())
        if self.imnet_model is not None:
            self.imnet_model.load_state_dict(self.model.state_dict())

    def train(self, mode: bool = True) -> DACS:
        """The teacher keeps dropout/drop-path off (BN stays in train mode, as in DAFormer);
        the ImageNet model is always in eval mode."""
        super().train(mode)
        disable_dropout(self.ema_model)
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
        if self.local_iter == 0:
            copy_parameters(self.ema_model, self.model)  # the teacher starts as the student
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

    def after_optimizer_step(self) -> None:
        """EMA of the updated student into the teacher, with the ramped momentum of the
        iteration that will use it (DAFormer's update at the start of iteration i + 1)."""
        ema_update(self.ema_model, self.model, ema_alpha(self.local_iter + 1, self.alpha))

    def train_on_source(self, img: torch.Tensor, img_metas: list[dict], gt: torch.Tensor,
                        logs: dict) -> list[torch.Tensor]:
        """Source CE; its graph is kept for feature distance, which reuses the source features."""
        with self.autocast(img):
            losses = self.model.forward_train(img, img_metas, gt, return_feat=True)
        features = losses.pop('features')
        loss, src_logs = parse_losses(losses)
        logs.update(add_prefix(src_logs, 'src'))
        self.backward(loss, retain_graph=self.feature_distance_enabled)
        return features

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
    def make_pseudo_labels(self, target_img: torch.Tensor, target_img_metas: list[dict],
                           valid_pseudo_mask: torch.Tensor | None, logs: dict
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher arg-max labels and their weight (confident ratio, minus the margins)."""
        with self.autocast(target_img):
            logits = self.ema_model.encode_decode(target_img, target_img_metas)
        label, weight, confident_ratio = pseudo_label_and_weight(logits, self.pseudo_threshold)
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
        with self.autocast(mixed.img):
            losses = self.model.forward_train(mixed.img, img_metas, mixed.label,
                                              seg_weight=mixed.weight)
        loss, mix_logs = parse_losses(losses)
        logs.update(add_prefix(mix_logs, 'mix'))
        self.backward(loss)

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
