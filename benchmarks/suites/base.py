"""What a benchmark suite is: the configs of its teacher, teacher assistant and student methods."""
from dataclasses import dataclass, field

__all__ = ['Suite', 'MethodSpec']


@dataclass(frozen=True)
class MethodSpec:
    """A student method: its config and which trained model is its teacher ('teacher', 'ta' or None)."""
    config: str
    teacher_role: str = 'teacher'
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A comparison on one data set.

    ``teacher_config`` trains the teacher from scratch; ``ta_config`` trains the teacher assistant by KD from
    the teacher (for TAKD); ``methods`` maps a method name ('scratch', 'kd', 'takd', 'annealing_kd',
    'continuation_kd', ablations...) to its :class:`MethodSpec`. Config paths are relative to the repository
    root. ``overrides`` (runner dotted-key overrides) apply to every run of the suite, e.g. epoch budgets.
    """
    name: str
    description: str
    teacher_config: str
    methods: dict
    ta_config: str = None
    default_seeds: tuple = (0, 1, 2, 3, 4)
    overrides: dict = field(default_factory=dict)
    quick_overrides: dict = field(default_factory=dict)
