"""Paper Eq. 4 as Sec. 3.3 states it: after every epoch the teacher labels all unlabelled images,
and BLV's class frequencies become those of the pseudo-labels."""
from __future__ import annotations

from mmcv.runner import HOOKS, Hook

from mmseg_uda.runtime import is_main_process

from ..evaluation.stream_eval import unwrap


@HOOKS.register_module()
class UnlabelledPassHook(Hook):
    """Runs the teacher's pass over the unlabelled images whenever one of the wrapper's
    pseudo-label observers asks for it (``PseudoLabelClassFrequency(source='unlabelled_pass',
    interval=<iterations per epoch>)``).

    Args:
        dataloader: the unlabelled images with the test pipeline, each once, sharded over ranks
            under DDP; ``apis.train.unlabelled_pass_hook`` builds it from the config's
            ``pseudo_label_pass.data``.
    """

    def __init__(self, dataloader) -> None:
        self.dataloader = dataloader

    def before_run(self, runner) -> None:
        wrapper = unwrap(runner.model)
        if not hasattr(wrapper, 'pseudo_label_pass'):
            raise TypeError(f'UnlabelledPassHook needs a teacher (uda.type=SelfTraining or '
                            f'DACS); the model is {type(wrapper).__name__}')

    def after_train_iter(self, runner) -> None:
        wrapper = unwrap(runner.model)
        iteration = runner.iter + 1
        observers = wrapper.observers_wanting_pass(iteration)
        if not observers:
            return
        count = wrapper.pseudo_label_pass(self.dataloader, iteration, observers,
                                          progress=is_main_process())
        runner.logger.info(f'iter {iteration}: Eq. 4 pass over {count} unlabelled images '
                           '(this rank)')
