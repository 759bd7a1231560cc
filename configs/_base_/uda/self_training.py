# Semi-supervised mean-teacher self-training (the BLV paper's Sec. 4.2 baseline, "without any
# other tricks"): the loss on the labelled images plus the loss on the teacher's confidence-
# weighted pseudo-labels of the unlabelled ones; teacher momentum 0.999.
uda = dict(
    type='SelfTraining',
    alpha=0.999,
    pseudo_threshold=0.968,  # DACS's confidence weighting of the pseudo-labels
    strong_augmentation=False,  # True: DACS's colour jitter and blur on the student's view
    unlabelled_weight=1.0)
# SelfTraining runs its own backward passes and optimizer step, so the runner gets no
# OptimizerHook; no optimizer_config here, as mmseg's zoo configs (its usual bases) set an empty
# one, which is accepted.
