"""The math of Annealing-KD and Continuation-KD in plain PyTorch (no torchdistill import).

- :mod:`continuation.annealing`: annealing functions Phi(T).
- :mod:`continuation.schedules`: the continuation parameter lambda in [0, 1] over a stage.
- :mod:`continuation.objectives`: the family of smoothed KD objectives L(theta; lambda).
- :mod:`continuation.noise`: teacher-noise mitigation used by the KL-based objectives.
"""
from .annealing import ANNEALING_FUNCTIONS, cosine_annealing, exponential_annealing, get_annealing_function, \
    linear_annealing
from .noise import TeacherNoiseMitigation
from .objectives import OBJECTIVES, ContinuationObjective, LogitAnnealing, SoftTargetKD, TargetContinuation, \
    TemperatureContinuation, build_objective
from .schedules import SCHEDULE_SHAPES, ContinuationSchedule, annealing_temperature
