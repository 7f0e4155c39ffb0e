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


def draw_figure(output_dir, records, configs, path=None):
    """Draws the figure for the first seed with teacher, KD and Annealing-KD runs; returns its path or None."""
    from plugins.datasets.sinusoid import sinusoid_function, sinusoid_split
    runs = {(r['method'], r['seed']): r for r in records}
    seeds = sorted(seed for (method, seed) in runs if method == 'annealing_kd'
                   and ('kd', seed) in runs and ('teacher', seed) in runs)
    if not seeds:
        return None
    seed = seeds[0]
    run_dir = {m: os.path.join(output_dir, runs[(m, seed)]['run_dir']) for m in ('teacher', 'kd', 'annealing_kd')}
    x = torch.linspace(0.0, 1.0, 500)
    target = sinusoid_function(x)
    teacher = _predict(_model(configs['teacher'], 'model',
                              _load_weights(os.path.join(run_dir['teacher'], 'student_best.pt'))['model']), x)
    students = {m: _predict(_model(configs[m], 'student_model',
                                   _load_weights(os.path.join(run_dir[m], 'student_best.pt'))['model']), x)
                for m in ('kd', 'annealing_kd')}
    kwargs = _stage1_kwargs(configs['annealing_kd'])
    tau_max, phi = kwargs['max_temperature'], get_annealing_function(kwargs.get('annealing', 'linear'))
    snapshot_path = os.path.join(run_dir['annealing_kd'], SNAPSHOT_FILE)
    snapshots = {}
    if os.path.isfile(snapshot_path):
        for entry in _load_weights(snapshot_path):
            state = entry['schedule'].get('AnnealingKDLoss', {})
            if entry['stage'] == 1 and 'T' in state:
                snapshots[state['T']] = _predict(_model(configs['annealing_kd'], 'student_model', entry['state_dict']), x)
    train = sinusoid_split('train')
    mse = lambda prediction: torch.mean((prediction - target) ** 2).item()  # noqa: E731

    figure, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True, sharey=True)
    axes = axes.ravel()
    axes[0].scatter(train.tensors[0].squeeze(1), train.tensors[1].squeeze(1), s=6, color='0.6', label='training data')
    axes[0].plot(x, target, color='k', linewidth=1, label='f(x)')
    axes[0].plot(x, teacher, color='C2', label=f'teacher (MSE to f {mse(teacher):.3f})')
    axes[0].set_title('(a) data and teacher')
    for temperature in range(tau_max, 0, -1):
        axes[1].plot(x, phi(temperature, tau_max) * teacher, color=plt.cm.viridis(temperature / tau_max),
                     linewidth=1, label=f'T={temperature}' if temperature in (tau_max, 1) or temperature % 3 == 0 else None)
    axes[1].set_title(f'(b) annealed teacher Φ(T)·teacher, T = {tau_max} .. 1')
    for axis, temperature, letter in zip(axes[2:5], SNAPSHOT_TEMPERATURES, 'cde'):
        if temperature <= tau_max:
            axis.plot(x, phi(temperature, tau_max) * teacher, color='C2', linestyle='--', label=f'target at T={temperature}')
        if temperature in snapshots:
            axis.plot(x, snapshots[temperature], color='C3', label=f'student at T={temperature}')
        else:
            axis.text(0.5, 0.5, 'no snapshot', transform=axis.transAxes, ha='center')
        axis.set_title(f'({letter}) Annealing-KD, Stage I, T = {temperature}')
    axes[5].plot(x, target, color='k', linewidth=1, label='f(x)')
    axes[5].plot(x, students['kd'], color='C0', label=f'regular KD (MSE to f {mse(students["kd"]):.3f})')
    axes[5].plot(x, students['annealing_kd'], color='C3',
                 label=f'Annealing-KD (MSE to f {mse(students["annealing_kd"]):.3f})')
    axes[5].set_title('(f) final students')
    for axis in axes:
        axis.legend(fontsize=7, loc='lower left')
        axis.grid(alpha=0.3)
    figure.suptitle(f'Toy example of Annealing-KD (paper Figure 2), seed {seed}')
    path = path or os.path.join(output_dir, FIGURE_NAME)
    save_figure(figure, path)
    return path
