"""Continuation KD objectives: the paper's (``annealed_hinge``) and our own variants L(theta; lambda).

Each objective is an ``nn.Module`` computing a loss from student logits, teacher logits and labels at a
position in the run. ``annealed_hinge`` (:class:`continuation.hinge.AnnealedHingeKD`) is the published
Continuation-KD objective (Jafari et al., EMNLP 2022 Findings, Eqs. 3-5). The others here are variants of
ours, built after continuation optimisation (Gaussian homotopy, Mobahi and Fisher 2015; curriculum learning,
Bengio et al. 2009; teacher annealing, Clark et al. 2019): lambda = 0 is a smoothed objective and lambda = 1
the target one (set with :meth:`ContinuationObjective.set_lambda`).

Conventions follow torchdistill's ``KDLoss``: ``alpha`` weights the cross-entropy on labels and
``beta`` (default 1 - alpha) the KL term, so at lambda = 1 the KL-based objectives equal ``KDLoss`` with the
same ``temperature`` and ``alpha`` (Hinton et al.'s Eq. 1 of the Annealing-KD paper with lambda_paper = beta).

To add an objective: subclass :class:`ContinuationObjective` (or :class:`SoftTargetKD`) and decorate it with
:func:`continuation.base.register_objective`; ``ContinuationKDLoss`` in ``plugins`` then accepts it by name.
"""
from typing import Optional, Union

import torch
import torch.nn.functional as F

from .annealing import check_max_temperature, get_annealing_function
from .base import ContinuationObjective, register_objective
from .checks import check_choice, check_number
from .hinge import AnnealedHingeKD
from .noise import TeacherNoiseMitigation
from .schedules import annealing_temperature

__all__ = ['ContinuationObjective', 'AnnealedHingeKD', 'LogitAnnealing', 'SoftTargetKD', 'TemperatureContinuation',
           'LabelWeightContinuation', 'LOGIT_REDUCTIONS']

LOGIT_REDUCTIONS = ('mean', 'batchmean', 'sum')


def _check_positive(value, field):
    return float(check_number(value, field, 0, exclusive_minimum=True, finite=True))


def _check_weight(value, field):
    return float(check_number(value, field, 0, 1))


@register_objective('logit_annealing')
class LogitAnnealing(ContinuationObjective):
    """Annealing-KD's Stage-I loss (Jafari et al. 2021, Eq. 3) as a member of the family.

    L(lambda) = || z_s - Phi(T) * z_t ||^2 with T = tau_max - round(lambda * (tau_max - 1)),
    so lambda = 0 gives T = tau_max (Phi = 1/tau_max, the softest target) and lambda = 1 gives T = 1
    (Phi = 1: plain logit matching). ``reduction``: ``mean`` over all elements (the authors' ``F.mse_loss``),
    ``batchmean`` (the paper's squared norm per sample, averaged over the batch = mean * num_classes) or
    ``sum``. ``distance='kl'`` replaces the squared error by KL(softmax(Phi z_t) || softmax(z_s)) averaged
    over the batch (the paper's Table 10 ablation).

    .. code-block:: yaml

        objective: 'logit_annealing'
        max_temperature: 10
        schedule: {shape: 'step', num_levels: 10}
    """

    end_identity = 'logit_matching'

    def __init__(self, max_temperature: int, annealing: str = 'linear', reduction: str = 'mean',
                 distance: str = 'mse'):
        super().__init__()
        self.max_temperature = check_max_temperature(max_temperature)
        self.annealing = annealing
        self.annealing_function = get_annealing_function(annealing)
        self.reduction = check_choice(reduction, 'reduction', LOGIT_REDUCTIONS)
        self.distance = check_choice(distance, 'distance', ('kl', 'mse'))

    @property
    def temperature(self) -> int:
        return annealing_temperature(self.lam, self.max_temperature)

    @property
    def phi(self) -> float:
        return self.annealing_function(self.temperature, self.max_temperature)

    def state(self) -> dict:
        return {'lambda': self.lam, 'T': self.temperature, 'phi': self.phi}

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                targets: Optional[torch.Tensor] = None) -> torch.Tensor:
        annealed_teacher = teacher_logits.detach() * self.phi
        if self.distance == 'kl':
            return F.kl_div(torch.log_softmax(student_logits, dim=1), torch.softmax(annealed_teacher, dim=1),
                            reduction='batchmean')
        squared_error = (student_logits - annealed_teacher).pow(2)
        if self.reduction == 'mean':
            return squared_error.mean()
        if self.reduction == 'batchmean':
            return squared_error.sum() / student_logits.shape[0]
        return squared_error.sum()


@register_objective('kd')
class SoftTargetKD(ContinuationObjective):
    """Vanilla KD (Hinton et al. 2015) with optional teacher-noise mitigation; the base of the KL objectives.

    L = mean_i [ alpha * CE(y_i, z_s,i) + beta * T^2 * KL(softmax(z_t,i / T) || softmax(z_s,i / T)) ],
    beta = 1 - alpha unless given. Subclasses make T or alpha depend on lambda; here only the noise
    mitigation strength does (when ``noise_mitigation`` is set), so lambda = 0 is vanilla KD.

    .. code-block:: yaml

        objective: 'kd'
        temperature: 4.0
        alpha: 0.5
    """

    end_identity = 'kd'

    def __init__(self, temperature: float, alpha: float, beta: Optional[float] = None,
                 noise_mitigation: Union[None, dict, TeacherNoiseMitigation] = None):
        super().__init__()
        self.target_temperature = _check_positive(temperature, 'temperature')
        self.target_alpha = _check_weight(alpha, 'alpha')
        self.beta = None if beta is None else _check_weight(beta, 'beta')
        if isinstance(noise_mitigation, dict):
            noise_mitigation = TeacherNoiseMitigation(**noise_mitigation)
        self.noise_mitigation = noise_mitigation

    def temperature_at(self, lam: float) -> float:
        return self.target_temperature

    def alpha_at(self, lam: float) -> float:
        return self.target_alpha

    def state(self) -> dict:
        state = {'lambda': self.lam, 'T': self.temperature_at(self.lam), 'alpha': self.alpha_at(self.lam)}
        if self.noise_mitigation is not None:
            state['noise_strength'] = self.noise_mitigation.strength(self.lam)
        return state

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                targets: Optional[torch.Tensor] = None) -> torch.Tensor:
        temperature = self.temperature_at(self.lam)
        alpha = self.alpha_at(self.lam)
        beta = 1.0 - alpha if self.beta is None else self.beta
        teacher_logits = teacher_logits.detach()
        log_student = torch.log_softmax(student_logits / temperature, dim=1)
        soft_targets = torch.softmax(teacher_logits / temperature, dim=1)
        kd_weight, label_weight = 1.0, 0.0
        if self.noise_mitigation is not None:
            soft_targets, kd_weight, label_weight = \
                self.noise_mitigation.apply(soft_targets, teacher_logits, targets, self.lam)
        kl = F.kl_div(log_student, soft_targets, reduction='none').sum(dim=1)
        per_sample = beta * temperature ** 2 * kl * kd_weight
        hard_weight = alpha + beta * label_weight
        if isinstance(hard_weight, torch.Tensor) or hard_weight > 0:
            if targets is None:
                raise ValueError('alpha > 0 needs the hard labels (targets) of each batch')
            per_sample = per_sample + hard_weight * F.cross_entropy(student_logits, targets, reduction='none')
        return per_sample.mean()


@register_objective('temperature')
class TemperatureContinuation(SoftTargetKD):
    """Temperature continuation: KD whose temperature falls from ``max_temperature`` to ``temperature``.

    T(lambda) = T_max + lambda * (T - T_max), in the KL term and its T(lambda)^2 gradient scaling; a high
    temperature flattens both distributions and smooths the objective (our formulation, after temperature
    schedules in KD and Gaussian homotopy). lambda = 1 is vanilla KD at ``temperature``.

    .. code-block:: yaml

        objective: 'temperature'
        temperature: 4.0
        alpha: 0.5
        max_temperature: 16.0
        schedule: {shape: 'cosine'}
    """

    def __init__(self, temperature: float, alpha: float, max_temperature: float, beta: Optional[float] = None,
                 noise_mitigation: Union[None, dict, TeacherNoiseMitigation] = None):
        super().__init__(temperature, alpha, beta=beta, noise_mitigation=noise_mitigation)
        self.max_temperature = _check_positive(max_temperature, 'max_temperature')
        if self.max_temperature < self.target_temperature:
            raise ValueError(f'max_temperature ({max_temperature}) must be >= temperature ({temperature})')

    def temperature_at(self, lam: float) -> float:
        return self.max_temperature + lam * (self.target_temperature - self.max_temperature)


@register_objective('label_weight', aliases=('target',))
class LabelWeightContinuation(SoftTargetKD):
    """Label-weight continuation: the weight on the hard label moves from 0 or 1 to ``alpha``.

    alpha(lambda) = alpha_0 + lambda * (alpha - alpha_0), beta(lambda) = 1 - alpha(lambda).
    ``direction='teacher_to_label'`` (alpha_0 = 0) starts on the teacher's soft output alone and moves toward
    the label, as BAM's teacher annealing (Clark et al. 2019); ``'label_to_teacher'`` (alpha_0 = 1) starts on
    the labels alone. lambda = 1 is vanilla KD with ``alpha`` (our formulation). Configs written before the
    rename name it ``'target'``, which still works.

    .. code-block:: yaml

        objective: 'label_weight'
        temperature: 4.0
        alpha: 0.5
        direction: 'teacher_to_label'
    """

    DIRECTIONS = {'teacher_to_label': 0.0, 'label_to_teacher': 1.0}

    def __init__(self, temperature: float, alpha: float, direction: str = 'teacher_to_label',
                 noise_mitigation: Union[None, dict, TeacherNoiseMitigation] = None):
        super().__init__(temperature, alpha, beta=None, noise_mitigation=noise_mitigation)
        self.direction = check_choice(direction, 'direction', sorted(self.DIRECTIONS))
        self.initial_alpha = self.DIRECTIONS[direction]

    def alpha_at(self, lam: float) -> float:
        return self.initial_alpha + lam * (self.target_alpha - self.initial_alpha)
