"""Continuation-KD as published (Jafari, Kobyzev, Rezagholizadeh, Poupart, Ghodsi; EMNLP 2022 Findings).

One stage; at (0-based) epoch e of n:

    L     = psi(e) * CE(z_s, y) + (1 - psi(e)) * mean_i L_CNT(x_i)                              (Eq. 3)
    L_CNT = max(0, d(z_s, a_t * z_t) - m * a_m)                                                   (Eq. 4)
    phi(T) = 1 - (T - 1) / T_max,  T integer in [1, T_max]                                        (Eq. 5)

with a_t = phi(T) when phi is applied to the teacher (else 1) and a_m = phi(T) when it is applied to the margin
(else 1): the Table-7 ablation switches. Eq. 4 is written for one input, so the hinge is per sample and then
averaged over the batch. ``d`` is the squared distance of the logits, averaged over the logit dimension
(``distance_reduction='mean'``, default) or summed (``'sum'``, the ||.||^2 of Eq. 4). The margin m is on the
scale of d: for C logits d is C times larger with 'sum', so the same m tolerates C times less error per logit
than with 'mean'. For a regression task (one output: STS-B, toys) CE becomes the MSE to the label.

T steps from T_max down to 1 with Annealing-KD's evenly spread schedule (each level an equal share of the run,
T = 1 in the last epoch; :class:`continuation.schedules.ContinuationSchedule` ``'step'``), so T never leaves
[1, T_max]. The paper's Algorithm 1 read literally (k = floor(n / T_max); T decreases by 1 whenever i mod k = 0,
i = 1..n) reaches T = 0 (phi > 1) in the last epoch when n is a multiple of T_max, and goes below 0 for other
lengths (T = -2 at n = 25, T_max = 10). ``temperature_span`` < 1
anneals over the first part of the run only (T = 1 after), which with m = 0 and Eq. 6's psi step at the same
epoch reproduces Annealing-KD's two stages (without its best-checkpoint reload between them).
psi follows :class:`continuation.psi.PsiSchedule` (Eqs. 6-8).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .annealing import check_max_temperature, linear_annealing
from .base import ContinuationObjective, register_objective
from .checks import check_bool, check_choice, check_number
from .psi import PsiSchedule, parse_fraction
from .schedules import annealing_schedule, annealing_temperature

__all__ = ['AnnealedHingeKD', 'DEFAULT_MARGIN', 'DISTANCE_REDUCTIONS', 'TASKS']

# Provisional: the paper does not state m. 1.0 is the third-party GLMKD implementation's value (aitsc/GLMKD,
# --continuation_kd_margin=1); the margin is to be chosen on validation.
DEFAULT_MARGIN = 1.0
DISTANCE_REDUCTIONS = ('mean', 'sum')
TASKS = ('classification', 'regression')


@register_objective('annealed_hinge')
class AnnealedHingeKD(ContinuationObjective):
    """The published Continuation-KD objective (module docstring: Eqs. 3-5), the default of ``ContinuationKDLoss``.

    L = psi * CE(z_s, y) + (1 - psi) * mean_i max(0, d(z_s, a_t z_t) - m a_m); it positions itself: T steps by
    ``max_temperature`` and psi follows its own schedule (no lambda ``schedule:``). At the end of the run psi = 1:
    the cross-entropy to the labels.

    .. code-block:: yaml

        objective: 'annealed_hinge'
        max_temperature: 10
        margin: 1.0
        psi: {ramp: '3/4'}

    :param max_temperature: T_max, an integer >= 1.
    :param margin: m >= 0, on the scale of the distance (see ``distance_reduction``).
    :param psi: the psi schedule spec of :class:`continuation.psi.PsiSchedule` (default Eq. 7).
    :param distance_reduction: ``'mean'`` (over the logits) or ``'sum'`` (the squared norm of Eq. 4).
    :param anneal_teacher: multiply the teacher logits by phi(T) (Table 7 switch).
    :param anneal_margin: multiply the margin by phi(T) (Table 7 switch).
    :param temperature_span: the fraction of the run over which T steps down (1: all of it, as Algorithm 1).
    :param task: ``'classification'`` (CE on the label) or ``'regression'`` (MSE to the label).
    """

    accepts_label_loss = True
    end_identity = 'label_loss'

    def __init__(self, max_temperature: int, margin: float = DEFAULT_MARGIN, psi: Optional[dict] = None,
                 distance_reduction: str = 'mean', anneal_teacher: bool = True, anneal_margin: bool = True,
                 temperature_span=1, task: str = 'classification'):
        super().__init__()
        self.max_temperature = check_max_temperature(max_temperature)
        self.margin = float(check_number(margin, 'margin', 0, finite=True))
        self.psi_schedule = PsiSchedule(psi)
        self.distance_reduction = check_choice(distance_reduction, 'distance_reduction', DISTANCE_REDUCTIONS)
        self.anneal_teacher = check_bool(anneal_teacher, 'anneal_teacher')
        self.anneal_margin = check_bool(anneal_margin, 'anneal_margin')
        self.temperature_span = parse_fraction(temperature_span, 'temperature_span')
        if not 0 < self.temperature_span <= 1:
            raise ValueError(f'temperature_span must lie in (0, 1] (a fraction of the run), got {temperature_span!r}')
        self.task = check_choice(task, 'task', TASKS)
        self.temperature_schedule = annealing_schedule(self.max_temperature)
        self.psi = 0.0 if self.psi_schedule.dynamic else self.psi_schedule.value

    @property
    def temperature(self) -> int:
        return annealing_temperature(self.lam, self.max_temperature)

    @property
    def phi(self) -> float:
        return linear_annealing(self.temperature, self.max_temperature)

    @property
    def teacher_scale(self) -> float:
        """a_t: phi(T) when phi is applied to the teacher, else 1."""
        return self.phi if self.anneal_teacher else 1.0

    @property
    def margin_scale(self) -> float:
        """a_m: phi(T) when phi is applied to the margin, else 1."""
        return self.phi if self.anneal_margin else 1.0

    @property
    def reads_teacher(self) -> bool:
        return self.psi < 1.0  # psi never decreases (PsiSchedule checks it): at 1 the teacher term is gone for good

    def state(self) -> dict:
        return {'T': self.temperature, 'phi': self.phi, 'psi': self.psi}

    def lambda_schedule(self, spec: Optional[dict]) -> Tuple[None, bool]:
        """No lambda schedule: T and psi follow the run by themselves (:meth:`set_position`)."""
        if spec is not None:
            raise ValueError('schedule applies to the lambda objectives; annealed_hinge steps T by max_temperature '
                             'and weighs the label by psi (per iteration: psi: {..., per_iteration: true})')
        return None, self.psi_schedule.per_iteration

    def temperature_epochs(self, num_epochs: int) -> int:
        """How many of the run's first epochs T takes to step from T_max down to 1."""
        return math.floor(self.temperature_span * num_epochs)

    def check_num_epochs(self, num_epochs: int, field: str = 'num_epochs') -> None:
        """Raises ``ValueError`` before training when a run of ``num_epochs`` cannot hold the schedules."""
        self.psi_schedule.check_num_epochs(num_epochs, field=field)
        span = self.temperature_epochs(num_epochs)
        if span < self.max_temperature:
            share = '' if self.temperature_span == 1 else \
                f' (temperature_span {self.temperature_span} of it: {span} epochs)'
            raise ValueError(f'{field}={num_epochs}{share} is shorter than the {self.max_temperature} levels of '
                             f'max_temperature: every temperature level needs at least one epoch')

    def set_position(self, epoch: float, num_epochs: int) -> None:
        """Moves T (per whole epoch) and psi (per possibly fractional ``epoch``) to ``epoch`` of ``num_epochs``."""
        if not 0 <= epoch < num_epochs:
            raise ValueError(f'epoch must lie in [0, {num_epochs}), got {epoch!r}')
        whole, span = int(epoch), self.temperature_epochs(num_epochs)
        self.set_lambda(self.temperature_schedule(whole, span) if whole < span else 1.0)
        self.psi = self.psi_schedule(epoch, num_epochs)

    def set_psi(self, psi: float) -> None:
        if not 0.0 <= psi <= 1.0:
            raise ValueError(f'psi must lie in [0, 1], got {psi!r}')
        self.psi = float(psi)

    def distances(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """d(z_s, a_t * z_t) per sample; the teacher is detached."""
        squared = (student_logits - teacher_logits.detach() * self.teacher_scale).pow(2).flatten(1)
        return squared.mean(dim=1) if self.distance_reduction == 'mean' else squared.sum(dim=1)

    def hinge(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """mean_i max(0, d_i - m * a_m) (Eq. 4, per sample, averaged over the batch)."""
        return torch.clamp(self.distances(student_logits, teacher_logits) - self.margin * self.margin_scale,
                           min=0.0).mean()

    def label_term(self, student_logits: torch.Tensor, targets: Optional[torch.Tensor] = None,
                   label_loss: Optional[torch.Tensor] = None) -> torch.Tensor:
        """CE (MSE for regression) to ``targets``; without targets, the precomputed ``label_loss``."""
        if targets is None:
            if label_loss is None:
                raise ValueError('psi > 0 needs the labels (targets) or a precomputed label loss '
                                 '(e.g. the .loss of a Hugging Face model output)')
            return label_loss
        if self.task == 'regression':
            return F.mse_loss(student_logits, targets.reshape(student_logits.shape).to(student_logits.dtype))
        return F.cross_entropy(student_logits, targets)

    def forward(self, student_logits: torch.Tensor, teacher_logits: Optional[torch.Tensor],
                targets: Optional[torch.Tensor] = None, label_loss: Optional[torch.Tensor] = None) -> torch.Tensor:
        loss = 0.0
        if self.psi < 1.0:  # at psi = 1 the teacher term has no weight: skip it
            loss = (1.0 - self.psi) * self.hinge(student_logits, teacher_logits)
        if self.psi > 0.0:
            loss = loss + self.psi * self.label_term(student_logits, targets, label_loss)
        return loss

    def extra_repr(self):
        return (f'max_temperature={self.max_temperature}, margin={self.margin}, psi={self.psi_schedule.spec}, '
                f'distance_reduction={self.distance_reduction!r}, anneal_teacher={self.anneal_teacher}, '
                f'anneal_margin={self.anneal_margin}, temperature_span={self.temperature_span}, task={self.task!r}')
