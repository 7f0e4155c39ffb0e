"""The Annealing-KD paper's Figure 2, redrawn from the sinusoid suite's trained checkpoints (no training here).

Panels: (a) training data, f and the teacher; (b) the annealed teacher Phi(T) * teacher(x) for T = 10 .. 1;
(c, d, e) the Annealing-KD student at the end of T = 10, 5 and 1 in Stage I (from the run's ``snapshots.pt``)
against its target at that T; (f) the final students of Annealing-KD (after Stage II) and of regular KD against
f. The first seed that has all three runs is drawn; the MSE to f on the test grid is in each legend.
"""
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from continuation.annealing import get_annealing_function  # noqa: E402

from .configs import read_structure  # noqa: E402
from .plots import save_figure  # noqa: E402
from .snapshots import SNAPSHOT_FILE  # noqa: E402

__all__ = ['draw_figure', 'FIGURE_NAME']

FIGURE_NAME = 'figure2.png'
SNAPSHOT_TEMPERATURES = (10, 5, 1)


def _model(config, role, state_dict):
    from plugins.runner import build_model
    model = build_model(read_structure(config)['models'][role], 'cpu')
    model.load_state_dict(state_dict)
    return model.eval()


def _load_weights(path):
    from plugins.checkpoint import load_checkpoint
    return load_checkpoint(path, what='figure 2 input')  # weights_only=True: a file here never runs code


@torch.no_grad()
def _predict(model, x):
    return model(x.unsqueeze(1)).squeeze(1)


def _stage1_kwargs(config):
    terms = read_structure(config)['train']['stage1']['criterion']['kwargs']['sub_terms']
    return next(term['criterion']['kwargs'] for term in terms.values() if term['criterion']['key'] == 'AnnealingKDLoss')


def _first_complete_seed(records):
    """The first seed with teacher, KD and Annealing-KD runs, and those runs by method; None without one."""
    runs = {(r['method'], r['seed']): r for r in records}
    seeds = sorted(seed for (method, seed) in runs if method == 'annealing_kd'
                   and ('kd', seed) in runs and ('teacher', seed) in runs)
    if not seeds:
        return None, {}
    return seeds[0], {method: runs[(method, seeds[0])] for method in ('teacher', 'kd', 'annealing_kd')}


def _trained(config, role, run_dir, x):
    """The predictions on ``x`` of the run's best checkpoint."""
    weights = _load_weights(os.path.join(run_dir, 'student_best.pt'))['model']
    return _predict(_model(config, role, weights), x)


def _stage1_snapshots(config, run_dir, x):
    """{T: predictions on ``x``} of the Annealing-KD student at the end of each Stage-I temperature level."""
    snapshot_path = os.path.join(run_dir, SNAPSHOT_FILE)
    snapshots = {}
    if os.path.isfile(snapshot_path):
        for entry in _load_weights(snapshot_path):
            state = entry['schedule'].get('AnnealingKDLoss', {})
            if entry['stage'] == 1 and 'T' in state:
                snapshots[state['T']] = _predict(_model(config, 'student_model', entry['state_dict']), x)
    return snapshots


def _data_panel(axis, x, target, teacher, mse):
    from plugins.datasets.sinusoid import sinusoid_split
    train = sinusoid_split('train')
    axis.scatter(train.tensors[0].squeeze(1), train.tensors[1].squeeze(1), s=6, color='0.6', label='training data')
    axis.plot(x, target, color='k', linewidth=1, label='f(x)')
    axis.plot(x, teacher, color='C2', label=f'teacher (MSE to f {mse(teacher):.3f})')
    axis.set_title('(a) data and teacher')


def _annealed_teacher_panel(axis, x, teacher, tau_max, phi):
    for temperature in range(tau_max, 0, -1):
        shown = temperature in (tau_max, 1) or temperature % 3 == 0  # a legend entry for a few levels
        axis.plot(x, phi(temperature, tau_max) * teacher, color=plt.cm.viridis(temperature / tau_max),
                  linewidth=1, label=f'T={temperature}' if shown else None)
    axis.set_title(f'(b) annealed teacher Φ(T)·teacher, T = {tau_max} .. 1')


def _snapshot_panels(axes, x, teacher, tau_max, phi, snapshots):
    for axis, temperature, letter in zip(axes, SNAPSHOT_TEMPERATURES, 'cde'):
        if temperature <= tau_max:
            axis.plot(x, phi(temperature, tau_max) * teacher, color='C2', linestyle='--',
                      label=f'target at T={temperature}')
        if temperature in snapshots:
            axis.plot(x, snapshots[temperature], color='C3', label=f'student at T={temperature}')
        else:
            axis.text(0.5, 0.5, 'no snapshot', transform=axis.transAxes, ha='center')
        axis.set_title(f'({letter}) Annealing-KD, Stage I, T = {temperature}')


def _final_students_panel(axis, x, target, students, mse):
    axis.plot(x, target, color='k', linewidth=1, label='f(x)')
    axis.plot(x, students['kd'], color='C0', label=f'regular KD (MSE to f {mse(students["kd"]):.3f})')
    axis.plot(x, students['annealing_kd'], color='C3',
              label=f'Annealing-KD (MSE to f {mse(students["annealing_kd"]):.3f})')
    axis.set_title('(f) final students')


def draw_figure(output_dir: str, records: list, configs: dict, path: str = None) -> str:
    """Draws the figure for the first seed with teacher, KD and Annealing-KD runs; returns its path or None."""
    from plugins.datasets.sinusoid import sinusoid_function
    seed, runs = _first_complete_seed(records)
    if seed is None:
        return None
    run_dir = {method: os.path.join(output_dir, record['run_dir']) for method, record in runs.items()}
    x = torch.linspace(0.0, 1.0, 500)
    target = sinusoid_function(x)
    teacher = _trained(configs['teacher'], 'model', run_dir['teacher'], x)
    students = {m: _trained(configs[m], 'student_model', run_dir[m], x) for m in ('kd', 'annealing_kd')}
    kwargs = _stage1_kwargs(configs['annealing_kd'])
    tau_max, phi = kwargs['max_temperature'], get_annealing_function(kwargs.get('annealing', 'linear'))
    mse = lambda prediction: torch.mean((prediction - target) ** 2).item()  # noqa: E731

    figure, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True, sharey=True)
    axes = axes.ravel()
    _data_panel(axes[0], x, target, teacher, mse)
    _annealed_teacher_panel(axes[1], x, teacher, tau_max, phi)
    _snapshot_panels(axes[2:5], x, teacher, tau_max, phi, _stage1_snapshots(configs['annealing_kd'],
                                                                           run_dir['annealing_kd'], x))
    _final_students_panel(axes[5], x, target, students, mse)
    for axis in axes:
        axis.legend(fontsize=7, loc='lower left')
        axis.grid(alpha=0.3)
    figure.suptitle(f'Toy example of Annealing-KD (paper Figure 2), seed {seed}')
    path = path or os.path.join(output_dir, FIGURE_NAME)
    save_figure(figure, path)
    return path
