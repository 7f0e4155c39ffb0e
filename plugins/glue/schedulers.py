"""The linear warm-up / linear decay learning-rate schedule of BERT-style fine-tuning, for torchdistill."""
from ..registry import register_new_scheduler

__all__ = ['linear_warmup_schedule']


@register_new_scheduler
def linear_warmup_schedule(optimizer, num_training_steps, warmup_ratio=0.06):
    """transformers' ``get_linear_schedule_with_warmup`` with the warm-up given as a fraction of the stage.

    The learning rate rises linearly from 0 over ``warmup_ratio * num_training_steps`` optimiser steps, then
    falls linearly to 0 at ``num_training_steps``. Step it every iteration (``scheduling_step: 1``). Leave
    ``num_training_steps`` null in YAML: the runner fills it from the stage's epochs and the size of its
    training loader (torchdistill's own GLUE examples do the same in their script). Each stage has its own
    schedule, restarted as in the Annealing-KD authors' GLUE script.

    .. code-block:: yaml

        scheduler:
          key: 'linear_warmup_schedule'
          kwargs: {num_training_steps: null, warmup_ratio: 0.06}
          scheduling_step: 1
    """
    from transformers import get_linear_schedule_with_warmup

    if isinstance(num_training_steps, bool) or not isinstance(num_training_steps, int) or num_training_steps < 1:
        raise ValueError('scheduler.kwargs.num_training_steps must be an integer >= 1 (leave it null for the '
                         f'runner to fill it from the training loader), got {num_training_steps!r}')
    if isinstance(warmup_ratio, bool) or not isinstance(warmup_ratio, (int, float)) or not 0 <= warmup_ratio < 1:
        raise ValueError(f'scheduler.kwargs.warmup_ratio must be a number in [0, 1), got {warmup_ratio!r}')
    return get_linear_schedule_with_warmup(optimizer, num_warmup_steps=int(warmup_ratio * num_training_steps),
                                           num_training_steps=num_training_steps)
