"""What a benchmark suite is: the configs of its teacher, teacher assistant and student methods."""
from dataclasses import dataclass, field

from yaml_configs.config_generation import config_path

__all__ = ['Suite', 'MethodSpec', 'TEACHER_ROLES', 'ANNEALING_STAGE1_LOSS', 'check_options', 'parse_flag', 'config_table']

# Which trained model a student config distils from: the suite's teacher, its teacher assistant, or none.
TEACHER_ROLES = ('teacher', 'ta', None)
# The kwargs of Annealing-KD's Stage-I loss in every generated annealing_kd config, for method overrides.
ANNEALING_STAGE1_LOSS = 'train.stage1.criterion.kwargs.sub_terms.annealing_kd.criterion.kwargs'


@dataclass(frozen=True)
class MethodSpec:
    """A student method: its config and which trained model is its teacher ('teacher', 'ta' or None).

    ``overrides`` are runner dotted-key overrides of this method's config (an ablation can be its base
    config plus overrides). ``group`` sorts the report ('main' methods, then 'ablation'); ``sweeps`` names the
    ablation sweeps the method belongs to (e.g. ``('tau_max',)``): the report shows each sweep's members side by
    side and marks the one with the best mean VALIDATION metric. ``note`` is a short description for the report.
    ``family`` and ``axes`` place a variant on the suite's axes (:attr:`Suite.axes`): ``kd_w2`` is
    ``MethodSpec(..., family='kd', axes=(('width', 2),))``; a method without ``family`` is its own family.
    """
    config: str
    teacher_role: str = 'teacher'
    overrides: dict = field(default_factory=dict)
    group: str = 'main'
    sweeps: tuple = ()
    note: str = ''
    family: str = None
    axes: tuple = ()


@dataclass(frozen=True)
class Suite:
    """A comparison on one data set.

    ``teacher_config`` trains the teacher from scratch; ``ta_config`` trains the teacher assistant by KD from
    the teacher (for TAKD); ``methods`` maps a method name ('scratch', 'kd', 'takd', 'annealing_kd',
    'continuation_kd', ablations...) to its :class:`MethodSpec`. Config paths are relative to the repository
    root. ``overrides`` (runner dotted-key overrides) apply to every run of the suite, e.g. epoch budgets;
    ``quick_overrides`` too, in ``--quick`` mode only. A key applies to the runs whose config has it.

    Optional (the harness has defaults): ``student_epochs`` is the epoch budget of every student method
    (a multi-stage config keeps its own split of it); ``teacher_epochs`` / ``ta_epochs`` the teacher's and the
    TA's; ``baseline`` is the method the paired differences are taken against; ``report`` is a callable
    ``report(output_dir, records, suite)`` drawing suite-specific figures after the tables. ``axes`` maps an
    axis name to ``{'reference': value, 'label': text, 'against_reference': bool}``: the report gives a table
    per value of each axis (the other axes at their reference), the paired difference of every family against
    the baseline family at the same point and, with ``against_reference``, against the same family at the
    axis's reference value (e.g. a noisy teacher against the clean one). A method's unlisted axes are at
    their reference. ``selection_only``: a suite that chooses settings on validation (tuning seeds); its metric
    figure shows validation, not test.
    """
    name: str
    description: str
    teacher_config: str
    methods: dict
    ta_config: str = None
    default_seeds: tuple = (0, 1, 2, 3, 4)
    overrides: dict = field(default_factory=dict)
    quick_overrides: dict = field(default_factory=dict)
    student_epochs: int = None
    teacher_epochs: int = None
    ta_epochs: int = None
    baseline: str = 'kd'
    report: object = None
    axes: dict = field(default_factory=dict)
    selection_only: bool = False


_TRUE, _FALSE = ('1', 'true', 'yes'), ('0', 'false', 'no', '')


def parse_flag(value, field: str) -> bool:
    """A suite option read as a boolean (true / false, yes / no, 1 / 0); the error names the option."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE + _FALSE:
        return str(value).strip().lower() in _TRUE
    raise ValueError(f'option {field} must be true or false, got {value!r}')


def check_options(suite: str, options: dict, accepted: tuple) -> None:
    """Refuses options the suite does not know, naming them and the accepted ones."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f'unknown {suite} suite option(s) {unknown}; '
                         + (f'accepted: {list(accepted)}' if accepted else 'it takes none'))


def config_table(folder: str, runs: dict) -> dict:
    """{name: config path from the repository root} of {name: (method, model, teacher model or None)}, named as the
    config generators name them: ``<folder>/<method>/<model>_from_<teacher>.yaml``."""
    return {name: config_path(folder, *run) for name, run in runs.items()}
