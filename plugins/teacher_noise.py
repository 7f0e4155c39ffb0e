"""A noisy teacher for benchmarks: its logits are permuted on a fixed fraction of the training samples.

Continuation-KD claims robustness to a noisy teacher. To measure it, the corruption must be the same for every
method and live outside the losses: :class:`TeacherNoiseDatasetWrapper` picks, once per run seed, which
training samples are corrupted and by which cyclic shift s in 1..C-1 of their C logits (the sample's
``supp_dict['teacher_noise_shift']``, 0 for a clean sample); :class:`NoisyTeacherWrapper` runs the teacher and
rolls each corrupted sample's logits by its shift, ``z'_c = z_{(c - s) mod C}``: the whole output distribution
moves s classes on, so the teacher's arg-max is always a wrong class on a corrupted sample it got right, and its
confidence is unchanged. The losses read the corrupted output as the teacher's.

.. code-block:: yaml

    train:
      train_data_loader:
        dataset_id: 'digits/train'
        dataset_wrapper: {key: 'TeacherNoiseDatasetWrapper', kwargs: {fraction: 0.25, num_classes: 10}}
        collate_fn: 'collate_tensor_rows'
      teacher:
        forward_proc: 'forward_all'          # the wrapper needs supp_dict
        requires_grad: False
        auxiliary_model_wrapper: {key: 'NoisyTeacherWrapper', kwargs: {forward_proc: 'forward_batch_only'}}
"""
import torch
from torchdistill.core.interfaces.registry import get_forward_proc_func
from torchdistill.models.wrapper import AuxiliaryModelWrapper

from .config_util import check_integer, check_number
from .datasets.in_memory import BatchFetchDatasetWrapper, TensorRows
from .registry import register_new_auxiliary_model_wrapper, register_new_dataset_wrapper

__all__ = ['noise_shifts', 'shift_logits', 'TeacherNoiseDatasetWrapper', 'NoisyTeacherWrapper', 'SHIFT_FIELD']

SHIFT_FIELD = 'teacher_noise_shift'


def noise_shifts(num_samples: int, fraction: float, num_classes: int, seed: int) -> torch.Tensor:
    """Per-sample logit shifts: ``round(fraction * num_samples)`` samples, drawn by ``seed``, get a shift drawn
    uniformly from 1..num_classes-1; the others get 0."""
    check_number(fraction, 'fraction', 0, 1)
    check_integer(num_classes, 'num_classes', 2)
    generator = torch.Generator().manual_seed(int(seed))
    corrupted = torch.randperm(num_samples, generator=generator)[:round(fraction * num_samples)]
    shifts = torch.zeros(num_samples, dtype=torch.long)
    shifts[corrupted] = torch.randint(1, num_classes, (len(corrupted),), generator=generator)
    return shifts


def shift_logits(logits: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Each row of ``logits`` (N, C) rolled right by its shift: ``out[i, c] = logits[i, (c - shifts[i]) mod C]``."""
    num_classes = logits.shape[1]
    columns = (torch.arange(num_classes, device=logits.device).unsqueeze(0)
               - shifts.to(logits.device).unsqueeze(1)) % num_classes
    return logits.gather(1, columns)


@register_new_dataset_wrapper
class TeacherNoiseDatasetWrapper(BatchFetchDatasetWrapper):
    """Puts each training sample's logit shift (0: clean) in ``supp_dict['teacher_noise_shift']``.

    :param fraction: fraction of the samples whose teacher logits are corrupted, in [0, 1].
    :param num_classes: number of classes C (shifts are drawn from 1..C-1).
    :param seed: which samples and shifts; default (null) the run's seed (``torch.initial_seed()``, which the
        runner sets with ``--seed``), so the corruption is fixed per seed and the same for every method.
    """

    def __init__(self, org_dataset, fraction, num_classes, seed=None):
        super().__init__(org_dataset)
        self.seed = torch.initial_seed() if seed is None else seed
        self.shifts = noise_shifts(len(org_dataset), fraction, num_classes, self.seed)

    def __getitem__(self, index):
        sample, target, supp_dict = super().__getitem__(index)
        supp_dict[SHIFT_FIELD] = int(self.shifts[index])
        return sample, target, supp_dict

    def __getitems__(self, indices):
        rows = super().__getitems__(indices)
        if not isinstance(rows, TensorRows):
            return [self[index] for index in indices]
        return TensorRows(rows.tensors, supp={SHIFT_FIELD: self.shifts[torch.as_tensor(indices, dtype=torch.long)]})


@register_new_auxiliary_model_wrapper
class NoisyTeacherWrapper(AuxiliaryModelWrapper):
    """Runs the teacher (with ``forward_proc``) and rolls each sample's logits by ``supp_dict['teacher_noise_shift']``
    (from :class:`TeacherNoiseDatasetWrapper`); the teacher's own output must be the logits tensor (N, C)."""

    def __init__(self, teacher_model, forward_proc='forward_batch_only', device=None, device_ids=None,
                 distributed=False):
        super().__init__()
        self.teacher = teacher_model
        self.teacher_forward_proc = get_forward_proc_func(forward_proc or 'forward_batch_only')

    def forward(self, sample_batch, targets=None, supp_dict=None):
        output = self.teacher_forward_proc(self.teacher, sample_batch, targets, supp_dict)
        if not isinstance(supp_dict, dict) or SHIFT_FIELD not in supp_dict:
            raise ValueError(f"NoisyTeacherWrapper: the batch has no supp_dict['{SHIFT_FIELD}']; put "
                             f"TeacherNoiseDatasetWrapper on the training loader and set teacher.forward_proc: "
                             f"'forward_all'")
        return shift_logits(output, torch.as_tensor(supp_dict[SHIFT_FIELD]))
