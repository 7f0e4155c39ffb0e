"""The linear warm-up / linear decay learning-rate schedule of BERT-style fine-tuning, for torchdistill."""
from torch.optim.lr_scheduler import LambdaLR

from continuation.checks import check_integer, check_number

from ..registry import register_new_scheduler

__all__ = ['linear_warmup_schedule', 'StageLengthLinearWarmup', 'STAGE_LENGTH']

STAGE_LENGTH = 'stage'  # num_training_steps: 'stage' = the stage's optimiser steps, told by our pre-epoch process


def _check_steps(num_training_steps):
    check_integer(num_training_steps, 'scheduler.kwargs.num_training_steps',
                  note=f" or '{STAGE_LENGTH}' (the stage's length, told by the pre-epoch process)")


class _LinearWarmupFactor:
    """transformers' linear warm-up / decay factor at an optimiser step; the total may come later."""

    def __init__(self, warmup_ratio, num_training_steps=None):
        self.warmup_ratio, self.num_training_steps = warmup_ratio, num_training_steps

    def __call__(self, step):
        if self.num_training_steps is None:
            return 0.0  # a placeholder: set_num_training_steps recomputes the rate before the first step
        warmup = int(self.warmup_ratio * self.num_training_steps)
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (self.num_training_steps - step) / max(1, self.num_training_steps - warmup))


class StageLengthLinearWarmup(LambdaLR):
    """The linear warm-up schedule of a stage whose length is known only once its epoch starts.

    The pre-epoch processes ``advance_loss_schedules`` / ``keep_teacher_in_eval_mode`` call
    :meth:`set_num_training_steps` with the stage's optimiser steps (its batches x epochs); an optimiser step
    taken before that raises, naming the missing process.
    """

    def __init__(self, optimizer, warmup_ratio):
        self.factor = _LinearWarmupFactor(warmup_ratio)
        super().__init__(optimizer, self.factor)
        self._guard = optimizer.register_step_pre_hook(self._refuse_unknown_length)

    @property
    def num_training_steps(self):
        return self.factor.num_training_steps

    def _refuse_unknown_length(self, optimizer, args, kwargs):
        raise RuntimeError(f"scheduler.kwargs.num_training_steps is '{STAGE_LENGTH}', but no pre-epoch process told "
                           "the scheduler the stage's length: name pre_epoch_process: 'keep_teacher_in_eval_mode' (or "
                           "'advance_loss_schedules') in the stage, or give num_training_steps as a number")

    def state_dict(self):
        # The factor's fields are saved by LambdaLR under lr_lambdas; the hook handle is no state.
        return {key: value for key, value in super().state_dict().items() if key not in ('factor', '_guard')}

    def set_num_training_steps(self, num_training_steps: int) -> None:
        """Fixes the stage's length and sets the learning rate of the current step accordingly."""
        _check_steps(num_training_steps)
        self.factor.num_training_steps = num_training_steps
        self._guard.remove()
        self._last_lr = [base_lr * self.factor(self.last_epoch) for base_lr in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group['lr'] = lr


@register_new_scheduler
def linear_warmup_schedule(optimizer, num_training_steps, warmup_ratio=0.06):
    """transformers' ``get_linear_schedule_with_warmup`` with the warm-up given as a fraction of the stage.

    The learning rate rises linearly from 0 over ``warmup_ratio * num_training_steps`` optimiser steps, then
    falls linearly to 0 at ``num_training_steps``. Step it every iteration (``scheduling_step: 1``). Give
    ``num_training_steps: 'stage'`` to make it the stage's optimiser steps, which our pre-epoch processes tell
    it at the stage's first epoch (a stage without a training loader of its own, as Annealing-KD's Stage II,
    gets the right count under any driver; torchdistill's text-classification script overwrites the value with
    its own count for stages that have one). Each stage has its own schedule, restarted as in the Annealing-KD
    authors' GLUE script.

    .. code-block:: yaml

        pre_epoch_process: 'keep_teacher_in_eval_mode'
        scheduler:
          key: 'linear_warmup_schedule'
          kwargs: {num_training_steps: 'stage', warmup_ratio: 0.06}
          scheduling_step: 1
    """
    from transformers import get_linear_schedule_with_warmup

    check_number(warmup_ratio, 'scheduler.kwargs.warmup_ratio', 0, 1, exclusive_maximum=True)
    if num_training_steps == STAGE_LENGTH:
        return StageLengthLinearWarmup(optimizer, warmup_ratio)
    _check_steps(num_training_steps)
    return get_linear_schedule_with_warmup(optimizer, num_warmup_steps=int(warmup_ratio * num_training_steps),
                                           num_training_steps=num_training_steps)
