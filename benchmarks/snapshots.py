"""``save_student_snapshots``: a torchdistill post-epoch hook that keeps the student at the end of each schedule level.

The paper's Figure 2 shows the student *during* Stage I of Annealing-KD (at T = 10, 5 and 1). The runner keeps
only the best checkpoint of each stage, so a config that wants the intermediate students names this hook::

    dependencies:
      - name: 'plugins'
      - name: 'benchmarks.snapshots'
    train:
      stage1:
        pre_epoch_process: 'advance_loss_schedules'
        post_epoch_process: 'save_student_snapshots'

It records the student's weights with the schedule state (T, Phi, lambda) of the epoch just trained; an epoch
at the same schedule state as the previous one replaces it, so ``<output_dir>/snapshots.pt`` ends with one entry
per level (its last epoch). Written atomically by the main process only. Then it runs
``keep_best_stage_checkpoints`` (torchdistill's default post-epoch process and Algorithm 1's stage checkpoints),
so it stands in for that process in a multi-stage config; the snapshot comes first, before a stage's end gives
the student its best checkpoint back.
"""
import os

from plugins.atomic_files import atomic_torch_save
from plugins.distributed import is_main_process
from plugins.losses.scheduled import find_scheduled_losses
from plugins.registry import register_new_post_epoch_proc_func
from plugins.stages import keep_best_stage_checkpoints, keeps_best_stage_checkpoints

__all__ = ['save_student_snapshots', 'SNAPSHOT_FILE']

SNAPSHOT_FILE = 'snapshots.pt'


@register_new_post_epoch_proc_func
@keeps_best_stage_checkpoints
def save_student_snapshots(self, metrics=None, **kwargs):
    """The student's weights with this epoch's schedule state, then ``keep_best_stage_checkpoints``."""
    _save_snapshot(self)
    keep_best_stage_checkpoints(self, metrics=metrics, **kwargs)


def _save_snapshot(self):
    schedule = {type(loss).__name__: loss.state() for loss in find_scheduled_losses(self.criterion)}
    output_dir = getattr(self, 'output_dir', None)
    if output_dir is None or not is_main_process():
        return
    snapshots = self.__dict__.setdefault('_student_snapshots', [])
    self._snapshot_epoch = getattr(self, '_snapshot_epoch', -1) + 1
    student = getattr(self.student_model, 'module', self.student_model)
    entry = {'stage': getattr(self, 'stage_number', 1), 'epoch': self._snapshot_epoch, 'schedule': schedule,
             'state_dict': {key: value.detach().cpu().clone() for key, value in student.state_dict().items()}}
    if snapshots and (snapshots[-1]['stage'], snapshots[-1]['schedule']) == (entry['stage'], schedule):
        snapshots[-1] = entry
    else:
        snapshots.append(entry)
    atomic_torch_save(snapshots, os.path.join(output_dir, SNAPSHOT_FILE))
