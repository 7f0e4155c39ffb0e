"""The math of Annealing-KD and Continuation-KD in plain PyTorch (no torchdistill import).

- :mod:`continuation.annealing`: annealing functions Phi(T).
- :mod:`continuation.schedules`: the continuation parameter lambda in [0, 1] over a stage (and T's step schedule).
- :mod:`continuation.psi`: the psi schedule of the published Continuation-KD (Eqs. 6-8).
- :mod:`continuation.base`: the objective base class and the registry of objectives, ``OBJECTIVES``.
- :mod:`continuation.hinge`: the published Continuation-KD objective (Eqs. 3-5), ``annealed_hinge``.
- :mod:`continuation.objectives`: our variants (``logit_annealing``, ``kd``, ``temperature``, ``label_weight``).
- :mod:`continuation.noise`: teacher-noise mitigation used by our KL-based variants.
- :mod:`continuation.checks`: the typed checks of configuration values (errors name the field).
"""
from .annealing import ANNEALING_FUNCTIONS, cosine_annealing, exponential_annealing, get_annealing_function, \
    linear_annealing
from .base import END_IDENTITIES, OBJECTIVE_ALIASES, OBJECTIVES, ContinuationObjective, build_objective, \
    objective_name, register_objective
from .hinge import DEFAULT_MARGIN, AnnealedHingeKD
from .noise import TeacherNoiseMitigation
from .objectives import LabelWeightContinuation, LogitAnnealing, SoftTargetKD, TemperatureContinuation
from .psi import PSI_EQ7, PSI_EQ8, PsiSchedule, psi_step
from .schedules import SCHEDULE_SHAPES, ContinuationSchedule, annealing_schedule, annealing_temperature, \
    schedule_from_spec
