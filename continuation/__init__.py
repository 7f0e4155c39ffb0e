"""The math of Annealing-KD and Continuation-KD in plain PyTorch (no torchdistill import).

- :mod:`continuation.annealing`: annealing functions Phi(T).
- :mod:`continuation.schedules`: the continuation parameter lambda in [0, 1] over a stage (and T's step schedule).
- :mod:`continuation.psi`: the psi schedule of the published Continuation-KD (Eqs. 6-8).
- :mod:`continuation.hinge`: the published Continuation-KD objective (Eqs. 3-5), ``annealed_hinge``.
- :mod:`continuation.objectives`: the objective family (the published one and our variants), ``OBJECTIVES``.
- :mod:`continuation.noise`: teacher-noise mitigation used by our KL-based variants.
"""
from .annealing import ANNEALING_FUNCTIONS, cosine_annealing, exponential_annealing, get_annealing_function, \
    linear_annealing
from .base import ContinuationObjective
from .hinge import DEFAULT_MARGIN, AnnealedHingeKD
from .noise import TeacherNoiseMitigation
from .objectives import OBJECTIVES, LogitAnnealing, SoftTargetKD, TargetContinuation, TemperatureContinuation, \
    build_objective
from .psi import PSI_EQ7, PSI_EQ8, PsiSchedule, psi_step
from .schedules import SCHEDULE_SHAPES, ContinuationSchedule, annealing_temperature
