"""The Annealing-KD paper's toy example (Section 3.1, Figure 2) as a suite: ``--suite sinusoid``.

A one-hidden-layer sigmoid MLP teacher (100 units) and student (10 units) regress
f(x) = sin(3 pi x) + sin(6 pi x) + sin(9 pi x) on [0, 1] (``plugins.datasets.sinusoid``). The student is trained
alone, by regular KD (MSE to the teacher's output and to the label, torchdistill ``MSELoss`` terms) and by
Annealing-KD (Stage I: MSE to Phi(T) * teacher output, T = 10 .. 1; Stage II: MSE to the label), all with the
same epoch budget. The metric is the MSE; on the test split (a noise-free grid) it is the error to f itself.
After the table, :func:`benchmarks.sinusoid_figure.draw_figure` draws the paper's figure as ``figure2.png``.
"""
from .base import MethodSpec, Suite, check_options, config_table

__all__ = ['build_sinusoid', 'SINUSOID_CONFIGS']

SINUSOID_CONFIGS = config_table('yaml_configs/sinusoid', {  # run: (method folder, model, teacher model)
    'teacher': ('mse', 'mlp100', None), 'scratch': ('mse', 'mlp10', None),
    **{method: (method, 'mlp10', 'mlp100') for method in ('kd', 'annealing_kd')}})
QUICK_EPOCHS = 20


def _draw(output_dir, records, suite):
    from ..sinusoid_figure import draw_figure
    draw_figure(output_dir, records, SINUSOID_CONFIGS)


def build_sinusoid(options: dict = None, quick: bool = False) -> Suite:
    """The toy-example suite (no options). ``--quick``: one seed, 20 epochs per run."""
    check_options('sinusoid', options or {}, ())
    methods = {
        'scratch': MethodSpec(SINUSOID_CONFIGS['scratch'], teacher_role=None, note='MSE on the labels only'),
        'kd': MethodSpec(SINUSOID_CONFIGS['kd'], note='0.5 MSE to teacher + 0.5 MSE to label'),
        'annealing_kd': MethodSpec(SINUSOID_CONFIGS['annealing_kd'], note='tau_max 10, then MSE to label'),
    }
    description = ('Toy regression of the Annealing-KD paper (Section 3.1): f(x) = sin(3 pi x) + sin(6 pi x) + '
                   'sin(9 pi x); teacher 1-100-1 sigmoid MLP, student 1-10-1. Test MSE = error to f on a '
                   'noise-free grid of 500 points. Figure: figure2.png.')
    return Suite(name='sinusoid', description=description + (' QUICK smoke run: not a result.' if quick else ''),
                 teacher_config=SINUSOID_CONFIGS['teacher'], methods=methods,
                 default_seeds=(0,) if quick else (0, 1, 2), report=_draw,
                 student_epochs=QUICK_EPOCHS if quick else None, teacher_epochs=QUICK_EPOCHS if quick else None)
