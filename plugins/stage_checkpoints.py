"""The best checkpoint of each training stage, as Annealing-KD's Algorithm 1 uses them.

:class:`StageCheckpoints` is told each epoch's validation value. It keeps the best checkpoint of the current
stage on disk, gives the student that checkpoint back when the stage ends (the next stage starts from it), and
when the last stage ends writes the best weights of that stage to the driver's final checkpoint path, in the
format that driver reloads. The post-epoch process ``keep_best_stage_checkpoints`` (``plugins/stages.py``)
drives it under any torchdistill driver; our runner drives a single stage with it directly.
"""
import math
import os
import shutil
import tempfile
from typing import Optional

import torch
from torchdistill.common.constant import def_logger

from . import distributed as dist_util
from .atomic_files import atomic_torch_save
from .config_util import check_choice
from .evaluation import get_metric

logger = def_logger.getChild(__name__)

__all__ = ['StageCheckpoints', 'DST_FORMATS']

# 'torchdistill': {'model': state_dict, 'best_value': ...}, what torchdistill's load_ckpt and the image script
# reload; 'save_pretrained': a Hugging Face model folder, what the text-classification script reloads.
DST_FORMATS = ('torchdistill', 'save_pretrained')


def _save_pretrained_atomically(model: torch.nn.Module, folder: str) -> None:
    """``model.save_pretrained(folder)`` with every file written next to its place, then renamed into it."""
    if not hasattr(model, 'save_pretrained'):
        raise TypeError(f'dst_format save_pretrained needs a model with save_pretrained(); '
                        f'{type(model).__name__} has none')
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix='.' + os.path.basename(folder) + '.')
    try:
        model.save_pretrained(staging)
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(folder, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class StageCheckpoints:
    """Best checkpoint per stage on validation; a stage ends on its best weights; the run ends on the last stage's.

    ``dst_ckpt`` is the driver's final checkpoint (``models.student_model.dst_ckpt``), written in ``dst_format``
    when the last stage ends; ``stage_ckpt`` is a path with a ``{stage}`` field (default
    ``stage{stage}_best.pt`` beside ``dst_ckpt``), written atomically with the weights only and read back with
    ``torch.load(weights_only=True)``. ``metric`` names a :mod:`plugins.evaluation` metric, which says whether
    higher is better. A NaN validation value never counts as an improvement.
    """

    def __init__(self, dst_ckpt: str, metric: str = 'accuracy', stage_ckpt: Optional[str] = None,
                 dst_format: str = 'torchdistill'):
        self.dst_format = check_choice(dst_format, 'dst_format', DST_FORMATS)
        self.dst_ckpt = os.path.expanduser(dst_ckpt)
        self.metric = get_metric(metric)
        default = os.path.join(os.path.dirname(os.path.abspath(self.dst_ckpt)), 'stage{stage}_best.pt')
        self.stage_ckpt = os.path.expanduser(stage_ckpt) if stage_ckpt else default
        self.results = []  # [{'stage', 'best_epoch', 'best_val'}] in stage order
        self.improved = False  # whether the last epoch reported was a new best of its stage

    def stage_path(self, stage: int) -> str:
        return self.stage_ckpt.format(stage=stage)

    def epoch_done(self, model: torch.nn.Module, stage: int, epoch: int, value: float, stage_ends: bool,
                   run_ends: bool) -> bool:
        """Records ``value`` for (global, 0-based) ``epoch`` of ``stage``; returns whether it is the stage's best.

        ``model`` is the unwrapped student. At ``stage_ends`` it gets the stage's best weights back; at
        ``run_ends`` (the end of the last stage) those weights are also written to ``dst_ckpt``.
        """
        stage_ends = stage_ends or run_ends
        if not self.results or self.results[-1]['stage'] != stage:
            self.results.append({'stage': stage, 'best_epoch': None, 'best_val': None})
        current = self.results[-1]
        value = float(value)
        self.improved = not math.isnan(value) and self.metric.is_better(value, current['best_val'])
        if self.improved:
            current.update(best_epoch=epoch, best_val=value)
            if dist_util.is_main_process():
                atomic_torch_save({'model': model.state_dict(), 'best_value': value, 'epoch': epoch,
                                   'stage': stage}, self.stage_path(stage))
        if stage_ends:
            self._end_stage(model, current)
        if run_ends:
            self._write_final(model, current)
        return self.improved

    def _end_stage(self, model, current):
        if current['best_epoch'] is None:
            raise RuntimeError(f"stage {current['stage']}: no epoch had a finite validation "
                               f'{self.metric.primary}, so there is no best checkpoint to continue from')
        dist_util.barrier()
        dist_util.load_ckpt_on_all_ranks(self.stage_path(current['stage']), model)  # weights only, checked
        logger.info('Stage %d ends on its best checkpoint: epoch %d, validation %s %.4f (%s)', current['stage'],
                    current['best_epoch'], self.metric.primary, current['best_val'], self.stage_path(current['stage']))

    def _write_final(self, model, current):
        if dist_util.is_main_process():
            if self.dst_format == 'torchdistill':
                atomic_torch_save({'model': model.state_dict(), 'best_value': current['best_val']}, self.dst_ckpt)
            else:
                _save_pretrained_atomically(model, self.dst_ckpt)
            logger.info('Final student (best of stage %d) written to %s', current['stage'], self.dst_ckpt)
        dist_util.barrier()
