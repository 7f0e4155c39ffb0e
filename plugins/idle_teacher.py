"""Stages whose criterion ignores the teacher (Annealing-KD's Stage II, Continuation-KD once psi = 1) should not pay
for it at all.

torchdistill's ``DistillationBox.forward_process`` runs the teacher on every step whatever the criterion, and
``wrap_model`` puts the teacher on the training device at every stage set-up.
"""
import torch
from torchdistill.common.constant import def_logger
from torchdistill.models.wrapper import AuxiliaryModelWrapper

from .config_util import uses_teacher

logger = def_logger.getChild(__name__)

__all__ = ['release_idle_teacher', 'skip_teacher_forward']


def skip_teacher_forward(model, sample_batch, targets=None, supp_dict=None, **kwargs) -> None:
    """A teacher forward_proc that does not run the teacher (its io_dict output is None)."""
    return None


def release_idle_teacher(box) -> bool:
    """When the box's current criterion never reads the teacher: skip its forward pass and move it to the CPU.

    Call after the box is built and after every stage change (the next stage's set-up restores the teacher's
    forward_proc and device when it needs them). Returns True when the teacher was released. A teacher wrapped
    in an auxiliary model wrapper with its own ``secondary_forward`` is left alone (it may need the outputs).
    """
    teacher = getattr(box, 'teacher_model', None)
    if teacher is None or uses_teacher(box.criterion):
        return False
    if box.teacher_forward_proc is skip_teacher_forward:
        return True  # released earlier in this stage
    if isinstance(teacher, AuxiliaryModelWrapper) and \
            type(teacher).secondary_forward is not AuxiliaryModelWrapper.secondary_forward:
        return False
    box.teacher_forward_proc = skip_teacher_forward
    on_gpu = any(tensor.is_cuda for tensor in (*teacher.parameters(), *teacher.buffers()))
    teacher.to(torch.device('cpu'))
    if on_gpu:
        torch.cuda.empty_cache()  # hand the teacher's memory back, not only to PyTorch's caching allocator
    logger.info('The criterion does not read the teacher for the rest of this stage: its forward pass is skipped '
                'and it is kept on the CPU')
    return True
