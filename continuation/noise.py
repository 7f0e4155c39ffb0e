"""Teacher-noise mitigation: keep the student from copying the teacher where the teacher is wrong.

A variant of ours for the KL objectives; the published Continuation-KD mitigates teacher noise differently,
with the annealed hinge margin of ``annealed_hinge`` (:mod:`continuation.hinge`). A sample is
*flagged* when the teacher's arg-max differs from its label, or when the teacher's probability of the label
(at temperature 1) is below ``threshold``. With strength s in [0, 1] (``max_strength * lambda`` when it
follows the continuation schedule, ``max_strength`` otherwise):

- ``correct``: the flagged sample's soft target becomes p_t + s * (onehot(y) - p_t), i.e. it is moved
  toward the label (label correction, as in teacher annealing towards gold labels, Clark et al. 2019);
- ``mask``: the flagged sample's KD term is weighted (1 - s) and the removed weight s * beta is moved to
  its cross-entropy term, so at s = 1 the sample is trained on its label only.

Unflagged samples are untouched, and s = 0 is plain KD.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .checks import check_bool, check_choice, check_number

__all__ = ['TeacherNoiseMitigation', 'NOISE_MODES']

NOISE_MODES = ('mask', 'correct')


class TeacherNoiseMitigation:
    """Flags samples the teacher gets wrong (or is unsure of) and corrects or masks their KD target.

    :param threshold: flag a sample when the teacher's probability of its label is below this, in [0, 1].
    :param mode: ``mask`` or ``correct`` (see the module docstring).
    :param max_strength: strength at lambda = 1, in [0, 1].
    :param follow_schedule: when True the strength is ``max_strength * lambda``, else ``max_strength``.
    """

    def __init__(self, threshold: float = 0.0, mode: str = 'mask', max_strength: float = 1.0,
                 follow_schedule: bool = True):
        self.threshold = float(check_number(threshold, 'noise_mitigation.threshold', 0, 1))
        self.mode = check_choice(mode, 'noise_mitigation.mode', NOISE_MODES)
        self.max_strength = float(check_number(max_strength, 'noise_mitigation.max_strength', 0, 1))
        self.follow_schedule = check_bool(follow_schedule, 'noise_mitigation.follow_schedule')

    def strength(self, lam: float) -> float:
        return self.max_strength * lam if self.follow_schedule else self.max_strength

    @torch.no_grad()
    def flags(self, teacher_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the samples whose teacher output is wrong or below the confidence threshold."""
        teacher_probs = torch.softmax(teacher_logits.float(), dim=1)
        label_probs = teacher_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
        return (teacher_probs.argmax(dim=1) != targets) | (label_probs < self.threshold)

    def apply(self, soft_targets: torch.Tensor, teacher_logits: torch.Tensor, targets: Optional[torch.Tensor],
              lam: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(soft_targets, kd_weight, label_weight)``: the possibly corrected targets, the per-sample
        multiplier of the KD term and the per-sample share of it moved to the cross-entropy term."""
        if targets is None:
            raise ValueError('noise mitigation needs the hard labels (targets) of each batch')
        strength = self.strength(lam) * self.flags(teacher_logits, targets).to(soft_targets.dtype)
        zeros = torch.zeros_like(strength)
        if self.mode == 'correct':
            one_hot = F.one_hot(targets, soft_targets.shape[1]).to(soft_targets.dtype)
            return soft_targets + strength.unsqueeze(1) * (one_hot - soft_targets), 1.0 - zeros, zeros
        return soft_targets, 1.0 - strength, strength

    def __repr__(self):
        return (f'TeacherNoiseMitigation(threshold={self.threshold}, mode={self.mode!r}, '
                f'max_strength={self.max_strength}, follow_schedule={self.follow_schedule})')
