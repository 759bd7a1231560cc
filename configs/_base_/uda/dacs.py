# DACS self-training (Tranheden et al., WACV 2021) as in DAFormer's base config:
# EMA teacher with a ramp to alpha=0.99, confidence-weighted pseudo-labels, ClassMix and
# strong augmentation of the mixed image. No feature distance, no pseudo-label margins.
uda = dict(
    type='DACS',
    alpha=0.99,
    pseudo_threshold=0.968,
    # Margins v1: rows of the target crop without pseudo-label weight (DAFormer: 15 / 120).
    pseudo_weight_ignore_top=0,
    pseudo_weight_ignore_bottom=0,
    imnet_feature_dist_lambda=0,
    imnet_feature_dist_classes=None,
    imnet_feature_dist_scale_min_ratio=None,
    # 'image': half of each source image's classes (ClassMix/DACS papers);
    # 'batch': half of the whole batch's classes, 255 included (DAFormer's released code).
    classmix_classes_from='image',
    color_jitter_strength=0.2,
    color_jitter_p=0.8,  # probability of applying it (DAFormer: color_jitter_probability=0.2)
    blur=True,
    blur_p=0.5,
    blur_sigma=(0.15, 1.15),
    # Paper Eq. 4, BLV's class frequencies from the pseudo-labels of every N iterations, is an
    # observer: pseudo_label_observers=[dict(type='PseudoLabelClassFrequency', interval=N)].
    debug_img_interval=1000)
# DACS runs its own backward passes and optimizer step.
optimizer_config = None
