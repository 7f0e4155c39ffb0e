"""The Continuation-KD paper's noise-robustness toy (Section 6, Figure 2) as a suite: ``--suite noisy_sinusoid``.

The paper: a low-frequency sinusoid plus a high-frequency sinusoidal "noise" is the noisy teacher; 3,000 points
are sampled from its graph; a student with 1-D input and output and two hidden layers of 128 is trained once with
vanilla KD and once with Continuation-KD; Continuation-KD's student is smoother. Everything else is our choice,
fixed here and in the two configs (``yaml_configs/noisy_sinusoid/``):

- Teacher: t(x) = sin(pi x) + 0.3 sin(5 pi x) on [-1, 1] (signal: one cycle; noise: five times the frequency,
  amplitude 0.3, power 0.045), an analytic model (``noisy_sinusoid_teacher``): nothing to train or load. Every
  method has ``teacher_role=None`` (the harness hands it no checkpoint) and the config's teacher is marked
  ``weights_in_kwargs: true`` (complete in its kwargs): no harness or runner code knows about it.
- Labels: the data are points of the teacher's graph, so a sample's label is t(x) itself (3,000 training and
  1,000 validation inputs, uniform on [-1, 1], fixed). No method sees the clean signal. Continuation-KD's label
  term is therefore the plain MSE to the teacher, and at psi = 1 its loss is vanilla KD's.
- Student: MLP 1-128-128-1, ReLU. Adam lr 3e-3, batch 100, 60 epochs for both methods; the best checkpoint on
  the validation MSE to the teacher (Algorithm 1's "save best checkpoint") is the one tested.
- Vanilla KD: MSE to the teacher's output. Continuation-KD: the published objective (``annealed_hinge``,
  ``task: 'regression'``), T_max 10, psi of Eq. 7 (ramp over the first 3/4 of the run), margin m = 0.09 = the
  noise amplitude squared: a student that follows phi(T) times the clean signal is inside the margin at every T.
- Metrics: the test MSE to the CLEAN signal on a 1,000-point grid (the table's metric, paired t-test against
  KD), and the MSE to the noisy teacher on the same grid (``extra_tests['teacher']``, in ``noise_errors.md``
  with its own paired test). ``figure2.png`` draws the paper's two panels.

How the settings were chosen (``--option tuning=true``: seeds 10-12, never reported, validation inputs only):
the frequencies and budget so that vanilla KD copies most of the noise within the budget (otherwise the toy cannot
show robustness), read on KD's validation MSE to the teacher; the margin's sensitivity on the validation error to
the clean signal (``extra_tests['val_clean']``). See the README's "Noise toy" subsection for the figures.
"""
from .base import MethodSpec, Suite, check_options, config_table, parse_flag
from .continuation import CONTINUATION_LOSS

__all__ = ['build_noisy_sinusoid', 'NOISY_SINUSOID_CONFIGS', 'STUDENT_EPOCHS', 'TUNING_SEEDS']

NOISY_SINUSOID_CONFIGS = config_table('yaml_configs/noisy_sinusoid', {
    method: (method, 'mlp128x2', 'noisy_sinusoid') for method in ('kd', 'continuation_kd')})
STUDENT_EPOCHS, QUICK_EPOCHS = 60, 10  # 10: the fewest epochs that hold T_max = 10 levels
TUNING_SEEDS, TUNING_MARGINS, TUNING_EPOCHS = (10, 11, 12), (0.0, 0.36), 30
OPTIONS = ('tuning',)


def _main_methods():
    return {
        'kd': MethodSpec(NOISY_SINUSOID_CONFIGS['kd'], teacher_role=None,
                         note='MSE to the analytic noisy teacher'),
        'continuation_kd': MethodSpec(NOISY_SINUSOID_CONFIGS['continuation_kd'], teacher_role=None,
                                      note='published objective: T_max 10, psi Eq. 7, margin 0.09'),
    }


def _tuning_methods():
    """The main methods, both at half the budget, and Continuation-KD at other margins (group 'tuning')."""
    methods = _main_methods()
    for name in ('kd', 'continuation_kd'):
        methods[f'{name}_e{TUNING_EPOCHS}'] = MethodSpec(
            NOISY_SINUSOID_CONFIGS[name], teacher_role=None, group='tuning', sweeps=('budget',),
            overrides={'train.num_epochs': TUNING_EPOCHS}, note=f'{TUNING_EPOCHS} epochs')
    for margin in TUNING_MARGINS:
        methods[f'continuation_kd_m{margin:g}'] = MethodSpec(
            NOISY_SINUSOID_CONFIGS['continuation_kd'], teacher_role=None, group='tuning', sweeps=('margin',),
            overrides={f'{CONTINUATION_LOSS}.margin': margin}, note=f'margin {margin:g}')
    return methods


def _report(output_dir, records, suite):
    from ..noisy_sinusoid_errors import write_error_table
    from ..noisy_sinusoid_figure import draw_figure
    write_error_table(output_dir, records, suite)
    draw_figure(output_dir, records)


def _tuning_report(output_dir, records, suite):
    from ..noisy_sinusoid_errors import VALIDATION_ERRORS, write_error_table
    write_error_table(output_dir, records, suite, errors=VALIDATION_ERRORS)  # choices read validation only


def build_noisy_sinusoid(options: dict = None, quick: bool = False) -> Suite:
    """The noise toy: KD and Continuation-KD, 5 seeds, 60 epochs. ``--quick``: 2 seeds, 10 epochs (a smoke run).

    Option ``tuning`` (default false): the selection runs instead (seeds 10-12, budget and margin sweeps).
    """
    options = dict(options or {})
    check_options('noisy_sinusoid', options, OPTIONS)
    tuning = parse_flag(options.get('tuning', False), 'tuning')
    if tuning and quick:
        raise ValueError('option tuning=true is a full selection run; it has no --quick mode')
    description = ("Noise toy of the Continuation-KD paper (Section 6, Figure 2): analytic teacher t(x) = sin(pi x) "
                   "+ 0.3 sin(5 pi x) on [-1, 1]; 3,000 training points of t's graph (label = t(x)); student MLP "
                   "1-128-128-1 ReLU, Adam 3e-3, batch 100, "
                   f"{QUICK_EPOCHS if quick else STUDENT_EPOCHS} epochs. Test MSE = error to the clean signal "
                   "sin(pi x) on a 1,000-point grid (the teacher's own error to it is 0.045); error to the noisy "
                   "teacher in noise_errors.md. Figure: figure2.png.")
    if quick:
        description += ' QUICK smoke run: not a result.'
    if tuning:
        description = 'Selection of the noise-toy setting on validation (seeds 10-12, not reported). ' + description
    return Suite(name='noisy_sinusoid_tuning' if tuning else 'noisy_sinusoid', description=description,
                 teacher_config=None, methods=_tuning_methods() if tuning else _main_methods(),
                 default_seeds=TUNING_SEEDS if tuning else ((0, 1) if quick else (0, 1, 2, 3, 4)),
                 student_epochs=QUICK_EPOCHS if quick else None, report=_tuning_report if tuning else _report,
                 selection_only=tuning)
