"""Speed of our losses against torchdistill's KDLoss, of a Stage-I epoch with cached teacher outputs, and of the
project runner against a plain PyTorch loop.

``python benchmarks/perf.py [--quick] [--sections resnet,runner] [--output runs/perf/perf.json] [--threads N]
[--device cpu]``

Sections (a) and (b) (``resnet``) run in one process with the paper's CIFAR pair, teacher ResNet-110 -> student
ResNet-8, on
synthetic 32x32 inputs (timing does not depend on pixel values), under ``torch.set_num_threads(--threads)``
(default: all CPUs). Variants are interleaved (the order rotates every repetition) and medians are reported,
so a slow spell of a shared machine hits every variant alike. Each time is taken on the wall clock and on
this process's CPU clock; on a machine other jobs share, the CPU clock with ``--threads 1`` is the steady one
(with several threads, OpenMP workers that wait for a descheduled sibling inflate both clocks).

(a) Training step, as torchdistill runs it: ``DistillationBox.forward_process`` + ``post_forward_process``
    (teacher forward, student forward, loss, backward, SGD step) with ``AnnealingKDLoss`` and
    ``ContinuationKDLoss`` against ``KDLoss``; same models, same batch. The ratio is the median over
    repetitions of (our step / the adjacent KDLoss step). The loss alone (forward + backward on fixed logits)
    is timed too, where our schedule's Python overhead would show. Also Stage II (cross-entropy): torchdistill's
    default, which runs the teacher anyway, against :func:`plugins.idle_teacher.release_idle_teacher`.
(b) Stage-I epoch (Annealing-KD) over ``--epoch-batches`` batches: teacher forward on every step, cached
    teacher outputs (memory and disk stores, after one filling epoch), and student-only training
    (torchdistill ``TrainingBox`` with cross-entropy).
(c) (``runner``) A digits student (scratch and KD, the configs' epochs) trained by ``plugins.runner`` and by a
    plain PyTorch loop doing the same work (``benchmarks/runner_overhead.py``), and by the runner with
    torchdistill's default per-sample batch fetching (the loaders before ``BatchFetchDatasetWrapper``): the
    runner's overhead before and after that fix, target <= 1.5x the plain loop. Then a cProfile breakdown of a KD
    runner run (data loading, forward, backward and step, validation, checkpoint writes, logging, hooks,
    diagnostics, set-up) and the import time of a fresh interpreter (paid once per harness worker). Always on
    the CPU with one torch thread, as the harness runs digits.

It prints the times as torch.utils.benchmark tables (``Compare``, the median of each clock; the sampling is
``benchmarks/timing.py``'s), then the ratios against the targets, and writes the figures as JSON (atomically).
``--quick`` (batch 4, one repetition, well under a minute) is for tests; its figures are not meant to be quoted.
"""
import argparse
import copy
import os
import platform
import sys
import tempfile
import time

# `python benchmarks/perf.py` puts benchmarks/ on sys.path; the packages live at the repository root.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
from torch.utils.data import RandomSampler, SequentialSampler, TensorDataset  # noqa: E402
from torchdistill.core.distillation import get_distillation_box  # noqa: E402
from torchdistill.core.training import get_training_box  # noqa: E402
from torchdistill.models.registry import get_model  # noqa: E402

import plugins  # noqa: E402,F401  (registers our losses, models and wrappers)
from plugins.atomic_files import atomic_write_json  # noqa: E402
from plugins.caching import CachedTeacherWrapper, apply_teacher_cache  # noqa: E402
from plugins.config_checks import check_device, checked_stages  # noqa: E402
from plugins.errors import ConfigError  # noqa: E402
from plugins.idle_teacher import release_idle_teacher  # noqa: E402
from plugins.losses.scheduled import find_scheduled_losses  # noqa: E402

from benchmarks.suites.digits import RECIPE  # noqa: E402
from benchmarks.timing import CLOCKS, compare_table, merge_by_clock, paired_ratios, summary, \
    time_interleaved  # noqa: E402

__all__ = ['run', 'main']

STEP_TARGET, EPOCH_TARGET, RUNNER_TARGET = 1.03, 1.15, 1.5
SECTIONS = ('resnet', 'runner')
IO = {'student_module_path': '.', 'student_module_io': 'output', 'teacher_module_path': '.',
      'teacher_module_io': 'output'}
LOSSES = {
    'KDLoss': {'key': 'KDLoss', 'kwargs': dict(IO, temperature=4.0, alpha=0.5)},
    'AnnealingKDLoss': {'key': 'AnnealingKDLoss', 'kwargs': dict(IO, max_temperature=10)},
    'ContinuationKDLoss': {'key': 'ContinuationKDLoss', 'kwargs': dict(
        IO, objective='temperature', temperature=4.0, alpha=0.5, max_temperature=16.0, schedule={'shape': 'cosine'})},
}
CE = {'key': 'CrossEntropyLoss', 'kwargs': {}}
CE_WRAPPER = {'key': 'SimpleLossWrapper', 'kwargs': {'input': {'is_from_teacher': False, 'module_path': '.',
                                                                'io': 'output'}, 'target': {'uses_label': True}}}
STAGE_EPOCHS = 10  # >= max_temperature, so the Annealing-KD schedule is valid


def build_models(num_classes, device):
    """ResNet-110 teacher (torchdistill) and ResNet-8 student (``plugins.models.cifar``, registered as 'resnet8')."""
    teacher, student = get_model('resnet110', num_classes=num_classes), get_model('resnet8', num_classes=num_classes)
    return teacher.to(device).eval(), student.to(device)


def weighted_sum(term, wrapper=None):
    sub_term = {'criterion': term, 'weight': 1.0}
    if wrapper is not None:
        sub_term['criterion_wrapper'] = wrapper
    return {'key': 'WeightedSumLoss', 'kwargs': {'sub_terms': {'loss': sub_term}}}


def make_config(datasets, criterion, batch_size, teacher=True, cache_mode='off', cache_dir=None):
    """A single-stage torchdistill config (the runner's format) around ``criterion``."""
    loader = {'dataset_id': 'train', 'sampler': {'class_or_func': RandomSampler, 'kwargs': {}},
              'kwargs': {'batch_size': batch_size, 'num_workers': 0, 'drop_last': True}}
    val_loader = {'dataset_id': 'val', 'sampler': {'class_or_func': SequentialSampler, 'kwargs': {}},
                  'kwargs': {'batch_size': batch_size, 'num_workers': 0}}
    stage = {'num_epochs': STAGE_EPOCHS, 'train_data_loader': loader, 'val_data_loader': val_loader,
             'optimizer': {'key': 'SGD', 'kwargs': {'lr': 0.1, 'momentum': 0.9, 'weight_decay': 1e-4}},
             'criterion': criterion}
    if teacher:
        stage['teacher'] = {'forward_proc': 'forward_batch_only', 'requires_grad': False}
        stage['student'] = {'forward_proc': 'forward_batch_only', 'requires_grad': True}
    else:
        stage['model'] = {'forward_proc': 'forward_batch_only'}
    if find_scheduled_losses(plugins_criterion(criterion)):
        stage['pre_epoch_process'] = 'advance_loss_schedules'
    elif teacher:
        stage['pre_epoch_process'] = 'keep_teacher_in_eval_mode'  # required of every stage with a teacher
    models = {'student_model': {'key': 'resnet8'}}
    if teacher:
        models['teacher_model'] = {'key': 'resnet110', 'weights_in_kwargs': True}
    return {'datasets': datasets, 'models': models, 'train': stage,
            'test': {'test_data_loader': dict(val_loader, dataset_id='test')},
            'teacher_cache': {'mode': cache_mode, 'cache_dir': cache_dir, 'max_memory_mb': 1024}}


def plugins_criterion(criterion_config):
    from torchdistill.losses.registry import get_high_level_loss
    return get_high_level_loss(copy.deepcopy(criterion_config))


def make_box(config, teacher, student, device):
    config = apply_teacher_cache(config, checked_stages(config))
    train = copy.deepcopy(config['train'])
    if teacher is None:
        return get_training_box(student, config['datasets'], train, device, None, False, 1)
    return get_distillation_box(teacher, student, config['datasets'], train, device, None, False, 1)


def train_step(box, sample_batch, targets, supp_dict):
    loss = box.forward_process(sample_batch, targets, supp_dict)
    box.post_forward_process(loss=loss)
    return loss


def _step_boxes(args, device, datasets):
    """A DistillationBox per loss of ``LOSSES`` (schedules mid-way, as in training) and Stage II's box with
    torchdistill's default and with :func:`release_idle_teacher`; every student in training mode."""
    teacher, student = build_models(args.num_classes, device)
    boxes = {}
    for name, loss in LOSSES.items():
        boxes[name] = make_box(make_config(datasets, weighted_sum(loss), args.batch_size), teacher,
                               copy.deepcopy(student), device)
        for scheduled in find_scheduled_losses(boxes[name].criterion):
            scheduled.set_epoch(STAGE_EPOCHS // 2, STAGE_EPOCHS)
    stage2 = weighted_sum(CE, CE_WRAPPER)
    boxes['Stage II, torchdistill default'] = make_box(make_config(datasets, stage2, args.batch_size), teacher,
                                                       copy.deepcopy(student), device)
    released = make_box(make_config(datasets, stage2, args.batch_size), teacher, copy.deepcopy(student), device)
    assert release_idle_teacher(released)
    boxes['Stage II, release_idle_teacher'] = released
    teacher.to(device)  # release_idle_teacher moved the shared teacher to the CPU; the other boxes need it here
    for box in boxes.values():
        box.student_model.train()
    return boxes


def _loss_only_times(args, device, criteria, targets):
    """Each criterion's forward + backward on fixed logits, ``args.loss_calls`` calls per sample."""
    student_logits = torch.randn(args.batch_size, args.num_classes, device=device, requires_grad=True)
    teacher_logits = torch.randn(args.batch_size, args.num_classes, device=device)
    io_dict = {'student': {'.': {'output': student_logits}}, 'teacher': {'.': {'output': teacher_logits}}}

    def loss_only(criterion):
        for _ in range(args.loss_calls):
            criterion(io_dict, {}, targets).backward()
            student_logits.grad = None

    return time_interleaved({name: (lambda c=c: loss_only(c)) for name, c in criteria.items()},
                            args.step_repeats * 3, device)


def _loss_cost_ratios(steps, losses):
    """Everything in a step but the criterion is the same torchdistill code on the same models, so a loss's cost
    on top of KDLoss's, over the KDLoss step, bounds our overhead far more tightly than the noisy step ratio."""
    return {clock: {f'{name} / KDLoss step, from loss cost': 1 + (
        losses[clock][name]['median_s'] - losses[clock]['KDLoss']['median_s']) / steps[clock]['KDLoss']['median_s']
        for name in ('AnnealingKDLoss', 'ContinuationKDLoss')} for clock in CLOCKS}


def measure_steps(args: argparse.Namespace, device: torch.device, datasets: dict) -> dict:
    """(a): step and loss-only times of each loss, and the Stage-II step with and without the teacher."""
    generator = torch.Generator().manual_seed(1)
    sample_batch = torch.randn(args.batch_size, 3, 32, 32, generator=generator).to(device)
    targets = torch.randint(0, args.num_classes, (args.batch_size,), generator=generator).to(device)
    boxes = _step_boxes(args, device, datasets)
    step_times = time_interleaved({name: (lambda box=box: train_step(box, sample_batch, targets, {}))
                                   for name, box in boxes.items()}, args.step_repeats, device)
    loss_times = _loss_only_times(args, device, {name: boxes[name].criterion for name in LOSSES}, targets)
    ours = ('AnnealingKDLoss', 'ContinuationKDLoss')
    pairs = {f'{name} / KDLoss step': (name, 'KDLoss') for name in ours}
    pairs['Stage II released / default step'] = ('Stage II, release_idle_teacher', 'Stage II, torchdistill default')
    step_ratios = paired_ratios(step_times, pairs)
    loss_ratios = paired_ratios(loss_times, {f'{name} / KDLoss loss only': (name, 'KDLoss') for name in ours})
    steps, losses = summary(step_times), summary(loss_times, calls=args.loss_calls)
    return {'step': steps, 'loss_only': losses, 'loss_cost_step_ratios': _loss_cost_ratios(steps, losses),
            **{key: merge_by_clock(step_ratios[key], loss_ratios[key]) for key in ('ratios', 'ratio_quartiles')}}


def run_epoch(box, epoch):
    box.pre_epoch_process(epoch=epoch)
    for sample_batch, targets, supp_dict in box.train_data_loader:
        train_step(box, sample_batch.to(box.device), targets.to(box.device), supp_dict)
    box.post_epoch_process()


CACHED = ('cached (memory)', 'cached (disk)')


def _epoch_boxes(args, device, datasets, cache_dir):
    """Stage-I (Annealing-KD) boxes: the teacher on every step, its outputs cached in memory and on disk; and a
    student-only TrainingBox with cross-entropy."""
    teacher, student = build_models(args.num_classes, device)
    annealing = weighted_sum(LOSSES['AnnealingKDLoss'])
    configs = {'teacher every step': make_config(datasets, annealing, args.batch_size),
               'cached (memory)': make_config(datasets, annealing, args.batch_size, cache_mode='memory'),
               'cached (disk)': make_config(datasets, annealing, args.batch_size, cache_mode='disk',
                                            cache_dir=cache_dir)}
    boxes = {name: make_box(config, teacher, copy.deepcopy(student), device) for name, config in configs.items()}
    boxes['student only'] = make_box(make_config(datasets, weighted_sum(CE, CE_WRAPPER), args.batch_size,
                                                 teacher=False), None, copy.deepcopy(student), device)
    return boxes


def _fill_caches(boxes, device):
    """Runs one filling epoch of each cached box (timed), then counts every teacher call the box makes after it."""
    wrappers = {name: boxes[name].teacher_model for name in CACHED}
    assert all(isinstance(wrapper, CachedTeacherWrapper) for wrapper in wrappers.values())
    times = time_interleaved({name: (lambda box=boxes[name]: run_epoch(box, 0)) for name in CACHED}, 1, device,
                             warmup=0)
    teacher_calls = {name: 0 for name in CACHED}
    for name, wrapper in wrappers.items():
        def counting(*args, forward_proc=wrapper.teacher_forward_proc, name=name, **kwargs):
            teacher_calls[name] += 1
            return forward_proc(*args, **kwargs)

        wrapper.teacher_forward_proc = counting  # from now on every teacher call is counted
    return {clock: {name: values[0] for name, values in by_name.items()} for clock, by_name in times.items()}, \
        teacher_calls


def measure_epochs(args: argparse.Namespace, device: torch.device, datasets: dict, cache_dir: str) -> dict:
    """(b): one Stage-I epoch with the teacher on every step, with cached outputs, and student-only training."""
    boxes = _epoch_boxes(args, device, datasets, cache_dir)
    fill, teacher_calls = _fill_caches(boxes, device)
    counters = {name: 0 for name in boxes}

    def epoch(name):
        run_epoch(boxes[name], counters[name] % STAGE_EPOCHS)
        counters[name] += 1

    def interleaved(names, repeats):
        return time_interleaved({name: (lambda name=name: epoch(name)) for name in names}, repeats, device, warmup=0)

    # The cheap variants are repeated often; the teacher-every-step epoch (~10x longer) a few times beside them.
    cheap = interleaved(CACHED + ('student only',), args.epoch_repeats)
    with_teacher = interleaved(('teacher every step', 'cached (memory)', 'student only'), args.teacher_epoch_repeats)
    cheap_ratios = paired_ratios(cheap, {f'{name} / student only': (name, 'student only') for name in CACHED})
    teacher_ratios = paired_ratios(with_teacher, {
        f'teacher every step / {name}': ('teacher every step', name) for name in ('cached (memory)', 'student only')})
    return {'epoch': summary(cheap), 'epoch_with_teacher': summary(with_teacher), 'fill_epoch_s': fill,
            'teacher_calls_after_filling': teacher_calls,
            **{key: merge_by_clock(cheap_ratios[key], teacher_ratios[key]) for key in ('ratios', 'ratio_quartiles')}}


RUNNER_VARIANTS = ('plain loop', 'runner', 'runner, per-sample batches')


def _runner_variant(overhead, method, variant, epochs, directory, teacher_ckpt, accuracy):
    """One call of (c): ``method``'s digits student trained by ``variant``; keeps its accuracy in ``accuracy``."""
    config, ckpt = overhead.CONFIGS[method], teacher_ckpt if method == 'kd' else None

    def call():
        accuracy[f'{method}: {variant}'] = overhead.plain_loop(config, epochs, teacher_ckpt=ckpt) \
            if variant == 'plain loop' else overhead.runner_run(
                config, epochs, os.path.join(directory, 'run'), teacher_ckpt=ckpt,
                per_sample=variant == RUNNER_VARIANTS[2])
    return call


def measure_runner(args: argparse.Namespace) -> dict:
    """(c): the digits student trained by the runner and by a plain PyTorch loop (``benchmarks.runner_overhead``),
    each method's three variants interleaved, one torch thread (as the harness runs them); then a cProfile
    breakdown of one KD runner run and the import time of a fresh interpreter."""
    from benchmarks import runner_overhead as overhead
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    accuracy = {}
    try:
        with tempfile.TemporaryDirectory(prefix='perf-runner-') as directory:
            teacher = overhead.train_teacher(os.path.join(directory, 'teacher'))
            times = time_interleaved({f'{method}: {name}': _runner_variant(
                overhead, method, name, args.runner_epochs, directory, teacher, accuracy)
                for method in overhead.CONFIGS for name in RUNNER_VARIANTS}, args.runner_repeats, torch.device('cpu'))
            profile = overhead.profile_runner(overhead.CONFIGS['kd'], args.runner_epochs, teacher)
        imports = overhead.import_seconds()
    finally:
        torch.set_num_threads(threads)
    pairs = {}
    for method in overhead.CONFIGS:
        pairs[f'{method}: runner / plain loop'] = (f'{method}: runner', f'{method}: plain loop')
        pairs[f'{method}: runner, per-sample batches / plain loop'] = (f'{method}: {RUNNER_VARIANTS[2]}',
                                                                       f'{method}: plain loop')
    return {'epochs': args.runner_epochs, 'repeats': args.runner_repeats, 'run': summary(times),
            **paired_ratios(times, pairs), 'accuracy': accuracy, 'profile_kd_runner_s': profile,
            'import_s': imports}


def run(args: argparse.Namespace) -> dict:
    """Runs the measurements of ``args.sections`` and returns the result dict (also written to ``args.output``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)  # leave the process as it was (e.g. under pytest)


def _settings(args, device, num_train):
    return {'quick': args.quick, 'device': str(device), 'threads': torch.get_num_threads(),
            'cpu_count': os.cpu_count(), 'batch_size': args.batch_size, 'sections': list(args.sections),
            'epoch_samples': num_train, 'num_classes': args.num_classes,
            'teacher': 'resnet110', 'student': 'resnet8', 'input': '3x32x32 synthetic',
            'step_repeats': args.step_repeats, 'epoch_repeats': args.epoch_repeats,
            'teacher_epoch_repeats': args.teacher_epoch_repeats, 'loss_calls': args.loss_calls,
            'torch': torch.__version__, 'python': platform.python_version(),
            'processor': platform.processor() or platform.machine(),
            'command': ' '.join(['python', '-m', 'benchmarks.perf', *args.argv])}


def _resnet(args, device, datasets):
    """(a) and (b), their ratios and whether they meet the targets."""
    steps = measure_steps(args, device, datasets)
    with tempfile.TemporaryDirectory(prefix='perf-teacher-cache-') as cache_dir:
        epochs = measure_epochs(args, device, datasets, cache_dir)
    all_ratios = merge_by_clock(steps['ratios'], epochs['ratios'])
    met = {clock: {'step': all(all_ratios[clock][f'{n} / KDLoss step'] <= STEP_TARGET
                               for n in ('AnnealingKDLoss', 'ContinuationKDLoss')),
                   'epoch': all_ratios[clock]['cached (memory) / student only'] <= EPOCH_TARGET} for clock in CLOCKS}
    return {'step': steps, 'stage1_epoch': epochs, 'ratios': all_ratios,
            'ratio_quartiles': merge_by_clock(steps['ratio_quartiles'], epochs['ratio_quartiles'])}, met


def _run(args):
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    num_train = args.batch_size * args.epoch_batches
    datasets = {split: TensorDataset(torch.randn(n, 3, 32, 32, generator=generator),
                                     torch.randint(0, args.num_classes, (n,), generator=generator))
                for split, n in (('train', num_train), ('val', args.batch_size), ('test', args.batch_size))}
    load_before = os.getloadavg()
    start = time.perf_counter()
    result = {'settings': _settings(args, device, num_train),
              'targets': {'step_ratio_max': STEP_TARGET, 'epoch_ratio_max': EPOCH_TARGET,
                          'runner_ratio_max': RUNNER_TARGET, 'met': {clock: {} for clock in CLOCKS}}}
    if 'resnet' in args.sections:
        measured, met = _resnet(args, device, datasets)
        result.update(measured)
        for clock in CLOCKS:
            result['targets']['met'][clock].update(met[clock])
    if 'runner' in args.sections:
        result['runner_vs_plain'] = measure_runner(args)
        for clock in CLOCKS:
            result['targets']['met'][clock]['runner'] = all(
                value <= RUNNER_TARGET for name, value in result['runner_vs_plain']['ratios'][clock].items()
                if name.endswith(': runner / plain loop'))
    result['settings'].update(load_average_before=load_before, load_average_after=os.getloadavg())
    result['wall_time_s'] = time.perf_counter() - start
    atomic_write_json(args.output, result)
    return result


def _target(name):
    if name.endswith('KDLoss step'):
        return STEP_TARGET
    if name.endswith(': runner / plain loop'):
        return RUNNER_TARGET
    return EPOCH_TARGET if name == 'cached (memory) / student only' else None


def _ratio_rows(lines, ratios_by_clock, quartiles, width=40):
    lines.append('ratios: median over repetitions of the ratio within a repetition [quartiles of those ratios]')
    lines.append(f"    {'':<{width}} {'wall':>21} {'cpu':>21}")
    for name in ratios_by_clock['wall']:
        wall, cpu = ratios_by_clock['wall'][name], ratios_by_clock['cpu'][name]
        spread = {clock: '[{:.3f}, {:.3f}]'.format(*quartiles[clock][name]) for clock in CLOCKS}
        target = _target(name)
        verdict = '' if target is None else f"  target <= {target}: wall {'met' if wall <= target else 'MISSED'}, " \
                                            f"cpu {'met' if cpu <= target else 'MISSED'}"
        lines.append(f"    {name:<{width}} {wall:6.3f} {spread['wall']:>14} {cpu:6.3f} {spread['cpu']:>14}{verdict}")


def _epoch_rows(epochs):
    """(b)'s rows: the interleaved epochs, the teacher-every-step epoch and the single filling epochs."""
    rows = {clock: dict(epochs['epoch'][clock], **{'teacher every step': epochs['epoch_with_teacher'][clock][
        'teacher every step']}) for clock in CLOCKS}
    for clock in CLOCKS:
        rows[clock].update({f'{name}, filling epoch': {'samples_s': [seconds]}
                            for name, seconds in epochs['fill_epoch_s'][clock].items()})
    return rows


def _resnet_table(result, lines):
    settings = result['settings']
    lines.append(f"ResNet-110 -> ResNet-8, {settings['input']}, batch {settings['batch_size']}, "
                 f"{settings['num_classes']} classes")
    lines.append(compare_table({
        f"(a) training step (teacher fwd, student fwd, loss, backward, SGD), median of {settings['step_repeats']} "
        f"interleaved repetitions": result['step']['step'],
        f"loss alone (forward + backward on fixed logits), median of {settings['step_repeats'] * 3}":
            result['step']['loss_only'],
        f"(b) Stage-I epoch of {settings['epoch_samples']} samples, median of {settings['epoch_repeats']} interleaved "
        f"repetitions ({settings['teacher_epoch_repeats']} with the teacher every step)":
            _epoch_rows(result['stage1_epoch'])}, settings['threads']))
    _ratio_rows(lines, result['ratios'], result['ratio_quartiles'])
    lines.append('    step ratio to KDLoss from the loss cost alone, 1 + (loss - KDLoss loss) / KDLoss step:')
    loss_cost = result['step']['loss_cost_step_ratios']
    for name in loss_cost['wall']:
        lines.append(f"    {name.split(' / ')[0]:<40} {loss_cost['wall'][name]:21.5f} {loss_cost['cpu'][name]:21.5f}")
    lines.append(f"teacher calls in the timed cached epochs: {result['stage1_epoch']['teacher_calls_after_filling']}")


def _runner_table(section, lines):
    lines.append(compare_table({
        f"(c) digits student (MLP 64-4-10), {section['epochs']} epochs with validation every epoch: runner against a "
        f"plain PyTorch loop, median of {section['repeats']} interleaved repetitions": section['run']}, 1))
    _ratio_rows(lines, section['ratios'], section['ratio_quartiles'], width=48)
    accuracy = ', '.join(f"{name} {value['test']:.1f}" for name, value in section['accuracy'].items())
    lines.append(f'    test accuracy of the last repetition (same work, not the same random draws): {accuracy}')
    profile = section['profile_kd_runner_s']
    lines.append(f"    where one KD runner run spends its time (cProfile, cumulative; profiling inflates Python "
                 f"code): {profile['total']:.2f} s in all")
    for name, seconds in profile.items():
        if name != 'total':
            lines.append(f"        {name:<66} {seconds:6.2f} s {100 * seconds / profile['total']:5.1f} %")
    lines.append(f"    process start (import torch, torchdistill, plugins in a fresh interpreter, once per harness "
                 f"worker): {section['import_s']:.1f} s wall")


def format_table(result: dict) -> str:
    """The measured figures as plain text: torch.utils.benchmark's tables of the times (the median of the wall
    clock and of the process CPU clock side by side), then the ratios against their targets."""
    settings, lines = result['settings'], []
    load = settings['load_average_before'][0], settings['load_average_after'][0]
    lines.append(f"device {settings['device']}, torch.set_num_threads({settings['threads']}) on "
                 f"{settings['cpu_count']} CPUs, 1-min load average {load[0]:.1f} before, {load[1]:.1f} after")
    if 'step' in result:
        _resnet_table(result, lines)
    if 'runner_vs_plain' in result:
        _runner_table(result['runner_vs_plain'], lines)
    lines.append(f"wall time {result['wall_time_s']:.0f} s")
    return '\n'.join(lines)


def get_args(argv: list = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='small and fast (for tests; at most a minute)')
    parser.add_argument('--output', help='JSON output (default runs/perf/perf.json, or perf_quick.json)')
    parser.add_argument('--threads', type=int, help='torch.set_num_threads (default: all CPUs; 1 with --quick, '
                                                    'which keeps it fast on a busy machine)')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--batch-size', type=int, help='default 128 (the paper), 4 with --quick')
    parser.add_argument('--epoch-batches', type=int, help='batches per timed epoch (default 8, 2 with --quick)')
    parser.add_argument('--step-repeats', type=int, help='default 21, 1 with --quick')
    parser.add_argument('--epoch-repeats', type=int, help='cached and student-only epochs (default 9, 1 with --quick)')
    parser.add_argument('--teacher-epoch-repeats', type=int, help='epochs with the teacher on every step (default 3, '
                                                                  '1 with --quick)')
    parser.add_argument('--loss-calls', type=int, help='loss calls per loss-only timing (default 200, 10 with --quick)')
    parser.add_argument('--num-classes', type=int, default=100, help='100 (CIFAR-100, default) or 10')
    parser.add_argument('--sections', default=','.join(SECTIONS),
                        help="comma-separated: 'resnet' ((a) and (b)), 'runner' ((c), always on the CPU) "
                             f"(default: {','.join(SECTIONS)})")
    parser.add_argument('--runner-epochs', type=int, help='(c): epochs per digits run (default: the digits recipe\'s, '
                                                          '2 with --quick)')
    parser.add_argument('--runner-repeats', type=int, help='(c): interleaved repetitions (default 9, 1 with --quick)')
    args = parser.parse_args(argv)
    args.sections = [name.strip() for name in args.sections.split(',') if name.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown or not args.sections:
        parser.error(f'--sections must name some of {list(SECTIONS)}, got {unknown or args.sections}')
    defaults = dict(batch_size=4, epoch_batches=2, step_repeats=1, epoch_repeats=1, teacher_epoch_repeats=1,
                    loss_calls=10, threads=1, runner_epochs=2, runner_repeats=1) if args.quick else \
        dict(batch_size=128, epoch_batches=8, step_repeats=21, epoch_repeats=9, teacher_epoch_repeats=3, loss_calls=200,
             threads=os.cpu_count(), runner_epochs=RECIPE['epochs'], runner_repeats=9)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1")
    try:
        check_device(args.device)
    except ConfigError as error:
        parser.error(str(error))
    if args.output is None:
        args.output = os.path.join('runs', 'perf', 'perf_quick.json' if args.quick else 'perf.json')
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def main(argv: list = None) -> dict:
    result = run(get_args(argv))
    print(format_table(result))
    return result


if __name__ == '__main__':
    main()
