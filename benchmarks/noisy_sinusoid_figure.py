"""The Continuation-KD paper's Figure 2, redrawn from the noise toy's trained students (no training here).

Two panels, as in the paper: (a) the student trained by vanilla KD, (b) the student trained by Continuation-KD,
each from the noisy teacher. Blue points: the teacher at the 3,000 training inputs (the samples every student
learns from); orange points: the trained student at the same inputs; black line (ours, not in the paper): the
clean signal. The first seed with both runs is drawn; each legend gives that run's MSE to the clean signal and to
the noisy teacher on the test grid.
"""
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .noisy_sinusoid_errors import run_errors, run_structure  # noqa: E402
from .plots import save_figure  # noqa: E402

__all__ = ['draw_figure', 'FIGURE_NAME', 'PANELS']

FIGURE_NAME = 'figure2.png'
PANELS = (('kd', '(a) vanilla KD'), ('continuation_kd', '(b) Continuation-KD'))


@torch.no_grad()
def trained_student(output_dir: str, record: dict) -> torch.nn.Module:
    """The run's best checkpoint in the student model of its config (weights only, nothing else unpickled)."""
    from plugins.runner import build_model
    model = build_model(run_structure(record)['models']['student_model'], 'cpu')
    checkpoint = torch.load(os.path.join(output_dir, record['run_dir'], 'student_best.pt'), map_location='cpu',
                            weights_only=True)
    model.load_state_dict(checkpoint['model'])
    return model.eval()


def _panel(axis, inputs, teacher, student, clean, title, errors):
    order = torch.argsort(inputs)
    axis.scatter(inputs, teacher, s=8, color='C0', label='noisy teacher (training samples)')
    axis.scatter(inputs, student, s=1, color='C1',
                 label=f'student (MSE to clean {errors["clean"]:.4f}, to teacher {errors["teacher"]:.4f})')
    axis.plot(inputs[order], clean[order], color='k', linewidth=0.8, label='clean signal', zorder=3)
    axis.set_title(title)
    axis.set_xlabel('x')
    axis.legend(fontsize=7, loc='upper left', markerscale=2)
    axis.grid(alpha=0.3)


@torch.no_grad()
def draw_figure(output_dir: str, records: list, path: str = None):
    """Draws the two panels for the first seed with both runs; returns the PNG's path, or None without such a seed."""
    from plugins.datasets.noisy_sinusoid import noisy_sinusoid_split
    runs = {(r['method'], r['seed']): r for r in records if r['role'] == 'student'}
    seeds = sorted(seed for (method, seed) in runs if all((name, seed) in runs for name, _ in PANELS))
    if not seeds:
        return None
    seed = seeds[0]
    function = run_structure(runs[(PANELS[0][0], seed)])['models']['teacher_model']['kwargs']
    inputs, teacher = noisy_sinusoid_split('train', function, target='teacher').tensors
    clean = noisy_sinusoid_split('train', function, target='clean').tensors[1]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axis, (method, title) in zip(axes, PANELS):
        record = runs[(method, seed)]
        student = trained_student(output_dir, record)(inputs)
        _panel(axis, inputs.squeeze(1), teacher.squeeze(1), student.squeeze(1), clean.squeeze(1),
               f'{title}, {record["epochs"]} epochs', run_errors(output_dir, record))
    figure.suptitle(f'Noise toy of Continuation-KD (paper Figure 2), seed {seed}')
    path = path or os.path.join(output_dir, FIGURE_NAME)
    save_figure(figure, path)
    return path
