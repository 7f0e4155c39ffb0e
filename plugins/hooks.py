"""Pre-epoch processes registered into torchdistill's boxes: what every driver must do each epoch.

torchdistill >= 1.0 never puts the teacher in eval mode (its default pre-epoch process only sets the student
to training mode), so a teacher with BatchNorm would update its running statistics and drift during
distillation, and the teacher-output cache would refuse to serve it. Every stage of our configs that has a
teacher names one of the processes below, so the same config trains the same student under any driver:

- ``advance_loss_schedules``: for a stage with a scheduled loss (Annealing-KD Stage I, Continuation-KD);
- ``keep_teacher_in_eval_mode``: for the other stages (KD, TAKD, Annealing-KD Stage II).

Both also tell a scheduler built with ``num_training_steps: 'stage'`` the stage's length (optimiser steps).
"""
import math
from typing import Optional, Tuple

from torchdistill.common.constant import def_logger
from torchdistill.core.interfaces.pre_epoch_proc import default_pre_epoch_process_with_teacher, \
    default_pre_epoch_process_without_teacher

from .config_util import stage_config
from .idle_teacher import release_idle_teacher
from .losses.scheduled import find_scheduled_losses
from .registry import register_new_pre_epoch_proc_func

logger = def_logger.getChild(__name__)

__all__ = ['advance_loss_schedules', 'keep_teacher_in_eval_mode', 'stage_position', 'put_teacher_in_eval_mode',
           'tell_stage_length', 'stage_optimizer_steps', 'TEACHER_EVAL_PRE_EPOCH_PROCESSES']

TEACHER_EVAL_PRE_EPOCH_PROCESSES = ('advance_loss_schedules', 'keep_teacher_in_eval_mode')


def stage_position(box, epoch: int) -> Tuple[int, int]:
    """(stage-local epoch, epochs in the stage) of a (MultiStages)DistillationBox at global ``epoch``."""
    if hasattr(box, 'stage_end_epoch'):
        num_epochs = stage_config(box.train_config, box.stage_number)['num_epochs']
        return epoch - (box.stage_end_epoch - num_epochs), num_epochs
    return epoch, box.num_epochs


def put_teacher_in_eval_mode(box) -> None:
    """The box's teacher (and any wrapper around it) in eval mode; a box without a teacher is left alone."""
    teacher = getattr(box, 'teacher_model', None)
    if teacher is not None:
        teacher.eval()


def stage_optimizer_steps(box, num_epochs: int) -> int:
    """How often torchdistill steps the box's scheduler in a stage of ``num_epochs`` epochs.

    Per iteration (``scheduling_step`` s > 0) it steps when the stage's batch count is a multiple of both s
    and the gradient-accumulation step a; per epoch (s <= 0) once an epoch.
    """
    scheduling_step = box.scheduling_step or 0
    if scheduling_step <= 0:
        return num_epochs
    every = math.lcm(int(scheduling_step), int(box.grad_accum_step or 1))
    return max(1, len(box.train_data_loader) * num_epochs // every)


def tell_stage_length(box, num_epochs: int) -> None:
    """Gives a scheduler that waits for its stage's length (``num_training_steps: 'stage'``) that length."""
    scheduler = getattr(box, 'lr_scheduler', None)
    if scheduler is None or not hasattr(scheduler, 'set_num_training_steps') or \
            scheduler.num_training_steps is not None:
        return
    steps = stage_optimizer_steps(box, num_epochs)
    scheduler.set_num_training_steps(steps)
    logger.info('%s: num_training_steps = %d (the stage: %d epochs of %d batches)', type(scheduler).__name__, steps,
                num_epochs, len(box.train_data_loader))


def _prepare_epoch(box, epoch, **kwargs):
    """torchdistill's default pre-epoch process, the teacher in eval mode, and the stage's length told."""
    if hasattr(box, 'teacher_model'):
        default_pre_epoch_process_with_teacher(box, epoch=epoch, **kwargs)
        put_teacher_in_eval_mode(box)
    else:
        default_pre_epoch_process_without_teacher(box, epoch=epoch, **kwargs)
    local_epoch, num_epochs = stage_position(box, epoch)
    tell_stage_length(box, num_epochs)
    return local_epoch, num_epochs


@register_new_pre_epoch_proc_func
def keep_teacher_in_eval_mode(self, epoch: Optional[int] = None, **kwargs) -> None:
    """torchdistill's default pre-epoch process, then the teacher in eval mode (as Algorithm 1 and the authors do).

    .. code-block:: yaml

        train:
          pre_epoch_process: 'keep_teacher_in_eval_mode'   # vanilla KD, TAKD, Annealing-KD Stage II
    """
    _prepare_epoch(self, epoch, **kwargs)


@register_new_pre_epoch_proc_func
def advance_loss_schedules(self, epoch: Optional[int] = None, **kwargs) -> None:
    """``keep_teacher_in_eval_mode``, then every scheduled loss term moves to this epoch.

    Name it in a stage's YAML as ``pre_epoch_process: 'advance_loss_schedules'``. Each term reads its
    schedule from its own kwargs; this hook only says where training is (stage-local epoch, stage length,
    iterations per epoch) and logs the resulting T / Phi / lambda.
    """
    local_epoch, num_epochs = _prepare_epoch(self, epoch, **kwargs)
    iterations_per_epoch = len(self.train_data_loader) if self.train_data_loader is not None else 1
    for loss in find_scheduled_losses(self.criterion):
        state = loss.set_epoch(local_epoch, num_epochs, iterations_per_epoch)
        logger.info('Epoch %d (stage epoch %d/%d) %s: %s', epoch, local_epoch + 1, num_epochs,
                    type(loss).__name__, ', '.join(f'{k}={v:.4g}' for k, v in state.items()))
    release_idle_teacher(self)  # e.g. Continuation-KD from psi = 1 on: the teacher's outputs no longer count
