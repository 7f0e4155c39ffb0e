"""Epoch hooks registered into torchdistill's DistillationBox."""
from torchdistill.common.constant import def_logger
from torchdistill.core.interfaces.pre_epoch_proc import default_pre_epoch_process_with_teacher

from .losses.scheduled import find_scheduled_losses
from .registry import register_new_pre_epoch_proc_func

logger = def_logger.getChild(__name__)

__all__ = ['advance_loss_schedules', 'stage_position']


def stage_position(box, epoch):
    """(stage-local epoch, epochs in the stage) of a (MultiStages)DistillationBox at global ``epoch``."""
    if hasattr(box, 'stage_end_epoch'):
        num_epochs = box.train_config[f'stage{box.stage_number}']['num_epochs']
        return epoch - (box.stage_end_epoch - num_epochs), num_epochs
    return epoch, box.num_epochs


@register_new_pre_epoch_proc_func
def advance_loss_schedules(self, epoch=None, **kwargs):
    """torchdistill's default pre-epoch process, then every scheduled loss term moves to this epoch.

    Name it in a stage's YAML as ``pre_epoch_process: 'advance_loss_schedules'``. Each term reads its
    schedule from its own kwargs; this hook only says where training is (stage-local epoch, stage length,
    iterations per epoch) and logs the resulting T / Phi / lambda.
    """
    default_pre_epoch_process_with_teacher(self, epoch=epoch, **kwargs)
    local_epoch, num_epochs = stage_position(self, epoch)
    iterations_per_epoch = len(self.train_data_loader) if self.train_data_loader is not None else 1
    for loss in find_scheduled_losses(self.criterion):
        state = loss.set_epoch(local_epoch, num_epochs, iterations_per_epoch)
        logger.info('Epoch %d (stage epoch %d/%d) %s: %s', epoch, local_epoch + 1, num_epochs,
                    type(loss).__name__, ', '.join(f'{k}={v:.4g}' for k, v in state.items()))
