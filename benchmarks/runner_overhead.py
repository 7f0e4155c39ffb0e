"""What the project runner costs over a plain PyTorch loop doing the same work on a digits student.

The plain loop trains the same student (width, Adam learning rate, batch size, epochs read from the config) on
the same standardised digits split, runs the teacher on every step and computes the same loss (cross-entropy,
or torchdistill's ``KDLoss`` formula with the config's T and alpha), validates every epoch keeping the best
state in memory, and tests that state at the end. The runner does the same through torchdistill's boxes, plus
what a reusable tool needs: config parsing and checks, per-step io-dict extraction, a finite-loss check,
atomic checkpoint writes at each validation improvement, ``result.json``, logs and end-of-run diagnostics.

Variants, interleaved with the order rotating (``benchmarks.timing.time_interleaved``): ``plain loop``,
``runner`` (the configs as shipped) and ``runner, per-sample batches`` (the same configs with torchdistill's
default per-sample fetching and ``default_collate``, i.e. the loaders before ``BatchFetchDatasetWrapper`` /
``collate_tensor_rows``). :func:`profile_runner` splits one runner run into where its time goes.
"""
import cProfile
import copy
import os
import pstats
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from plugins.datasets.digits import digits_split
from plugins.models.mlp import mlp

from .configs import read_structure
from .suites.digits import DIGITS_CONFIGS

__all__ = ['CONFIGS', 'PER_SAMPLE_LOADERS', 'plain_loop', 'runner_run', 'profile_runner', 'import_seconds',
           'PROFILE_CATEGORIES']

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {method: os.path.join(REPO_ROOT, DIGITS_CONFIGS[method]) for method in ('scratch', 'kd')}
TEACHER_CONFIG = os.path.join(REPO_ROOT, DIGITS_CONFIGS['teacher'])
# Runner overrides restoring torchdistill's default loaders (per-sample fetching and collation).
PER_SAMPLE_LOADERS = {'train.train_data_loader.dataset_wrapper': {}, 'train.train_data_loader.collate_fn': None,
                      'train.val_data_loader.collate_fn': None, 'test.test_data_loader.collate_fn': None}
# cProfile cumulative-time categories: (label, file fragment, function names)
PROFILE_CATEGORIES = (
    ('config loading (YAML, data sets)', 'plugins/runner.py', ('load_config',)),
    ('box set-up (models, loaders, optimiser)', 'torchdistill/core/', ('get_distillation_box', 'get_training_box')),
    ('data loading (DataLoader)', 'torch/utils/data/dataloader.py', ('__next__',)),
    ('forward: teacher, student, loss (torchdistill forward_process)', 'torchdistill/core/', ('forward_process',)),
    ('backward + optimiser step (torchdistill post_forward_process)', 'torchdistill/core/interfaces/post_forward_proc',
     ('default_post_forward_process',)),
    ('validation every epoch (plugins.evaluation.evaluate)', 'plugins/evaluation.py', ('evaluate',)),
    ('checkpoint and result writes (atomic, fsync)', 'plugins/atomic_files.py', ('_atomic_write',)),
    ('logging', 'logging/__init__.py', ('_log',)),
    ('epoch hooks (pre / post epoch)', 'torchdistill/core/interfaces/',
     ('default_pre_epoch_process_with_teacher', 'default_pre_epoch_process_without_teacher',
      'default_post_epoch_process_with_teacher', 'default_post_epoch_process_without_teacher')),
    ('end-of-run diagnostics (dead units)', 'plugins/diagnostics.py', ('training_diagnostics',)),
)


def _student_settings(config):
    structure = read_structure(config)
    models, train = structure['models'], structure['train']
    student = models.get('student_model', models.get('model'))['kwargs']
    kd = [term['criterion']['kwargs'] for term in train['criterion']['kwargs']['sub_terms'].values()
          if term['criterion']['key'] == 'KDLoss']
    return {'hidden_dims': student['hidden_dims'], 'lr': train['optimizer']['kwargs']['lr'],
            'batch_size': train['train_data_loader']['kwargs']['batch_size'], 'kd': kd[0] if kd else None,
            'teacher_dims': models['teacher_model']['kwargs']['hidden_dims'] if kd else None}


def _kd_loss(student_logits, teacher_logits, targets, temperature, alpha):
    """torchdistill's KDLoss: alpha * CE + (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))."""
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1), F.softmax(teacher_logits / temperature, dim=1),
                    reduction='batchmean')
    return alpha * F.cross_entropy(student_logits, targets) + (1 - alpha) * temperature ** 2 * soft


def _accuracy(model, dataset):
    inputs, labels = dataset.tensors
    with torch.no_grad():
        return 100.0 * (model(inputs).argmax(dim=1) == labels).float().mean().item()


def plain_loop(config, epochs, seed=0, teacher_ckpt=None):
    """Trains ``config``'s student in plain PyTorch; returns ``{'best_val', 'test'}`` (accuracy, %)."""
    settings = _student_settings(config)
    train, val, test = (digits_split(split) for split in ('train', 'val', 'test'))
    torch.manual_seed(seed)
    student = mlp(64, settings['hidden_dims'], 10)
    teacher = None
    if settings['kd'] is not None:
        teacher = mlp(64, settings['teacher_dims'], 10)
        teacher.load_state_dict(torch.load(teacher_ckpt, map_location='cpu', weights_only=True)['model'])
        teacher.eval()
    optimizer = torch.optim.Adam(student.parameters(), lr=settings['lr'])
    inputs, labels = train.tensors
    best, best_state = None, None
    for _ in range(epochs):
        student.train()
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), settings['batch_size']):
            index = order[start:start + settings['batch_size']]
            x, y = inputs[index], labels[index]
            logits = student(x)
            if teacher is None:
                loss = F.cross_entropy(logits, y)
            else:
                with torch.no_grad():
                    teacher_logits = teacher(x)
                loss = _kd_loss(logits, teacher_logits, y, settings['kd']['temperature'], settings['kd']['alpha'])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        student.eval()
        accuracy = _accuracy(student, val)
        if best is None or accuracy > best:
            best, best_state = accuracy, copy.deepcopy(student.state_dict())
    student.load_state_dict(best_state)
    return {'best_val': best, 'test': _accuracy(student, test)}


def runner_run(config, epochs, output_dir, seed=0, teacher_ckpt=None, per_sample=False):
    """One ``plugins.runner.run_config`` call with ``epochs``; returns ``{'best_val', 'test'}``."""
    from plugins.runner import run_config
    overrides = dict(PER_SAMPLE_LOADERS if per_sample else {}, **{'train.num_epochs': epochs})
    result = run_config(config, seed=seed, output_dir=output_dir, teacher_ckpt=teacher_ckpt, overrides=overrides,
                        show_progress=False)
    return {'best_val': result['best_val'], 'test': result['test']['accuracy']}


def train_teacher(output_dir):
    """The digits teacher (its own config) for the KD variants; returns its checkpoint path."""
    from plugins.runner import run_config
    run_config(TEACHER_CONFIG, seed=0, output_dir=output_dir, show_progress=False)
    return os.path.join(output_dir, 'student_best.pt')


def profile_runner(config, epochs, teacher_ckpt=None):
    """``{category: cumulative seconds}`` of one runner run under cProfile (plus 'total'); profiling inflates
    Python-heavy parts, so read the shares, not the absolute figures."""
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix='runner-profile-') as output_dir:
        profiler.enable()
        runner_run(config, epochs, output_dir, teacher_ckpt=teacher_ckpt)
        profiler.disable()
    stats = pstats.Stats(profiler).stats
    seconds = {'total': sum(entry[2] for entry in stats.values())}  # tottime over every function
    for label, fragment, names in PROFILE_CATEGORIES:
        seconds[label] = sum(entry[3] for (path, _, function), entry in stats.items()
                             if function in names and fragment in path.replace(os.sep, '/'))
    return seconds


def import_seconds():
    """Wall seconds a fresh interpreter takes to import the runner (torch, torchdistill, plugins): paid once per
    process, i.e. once per harness worker."""
    started = time.perf_counter()
    path = os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get('PYTHONPATH')]))
    subprocess.run([sys.executable, '-c', 'import plugins.runner'], check=True, env=dict(os.environ, PYTHONPATH=path))
    return time.perf_counter() - started
