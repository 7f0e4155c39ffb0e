"""Trains any torchdistill YAML config: ``python -m plugins.runner --config CONFIG.yaml``.

torchdistill's example scripts are not part of its pip package, so this is the project's runner (the configs
also run under those scripts). It loads the teacher from its checkpoint (train a teacher by running its own,
teacher-less config), trains the student stage by stage with torchdistill's (MultiStages)DistillationBox or
TrainingBox and validates every epoch. The best checkpoint of each stage on the validation split is kept by the
configs' post-epoch process ``keep_best_stage_checkpoints`` (plugins/stages.py), which, as Annealing-KD's
Algorithm 1 requires, gives it back to the student before the next stage starts; the runner hands it each
epoch's validation value. The best checkpoint of the last stage is evaluated once on the test split. Works under
``torchrun`` (NCCL on GPUs, gloo on CPUs).

Outputs in ``--output-dir``: ``student_best.pt`` (torchdistill checkpoint format), ``result.json`` (metrics,
per-epoch history with the schedule's T / Phi / lambda), written atomically, and ``train.log``, appended line by
line as training goes. Checkpoints are read with ``weights_only=True`` and checked against the model first.
Every bad input stops the run before training with one line that names the field or file
(:mod:`plugins.errors`); a loss that becomes non-finite or explodes stops it with
:class:`~plugins.errors.TrainingDivergedError`.
"""
import argparse
import copy
import logging
import os
import resource
import sys
import time

import torch
from torchdistill.common.constant import def_logger
from torchdistill.common.main_util import import_dependencies, set_seed
from torchdistill.core.distillation import get_distillation_box
from torchdistill.core.training import get_training_box
from torchdistill.misc.log import LOGGING_FORMAT, set_basic_log_config
from torchdistill.models.registry import get_model
from tqdm import tqdm

from . import distributed as dist_util
from .checkpoint import atomic_write_json, load_model_weights
from .caching import apply_teacher_cache, release_idle_teacher, teacher_cache_settings
from .config_checks import (ConfigError, check_config, check_device, check_directory, check_seed, parse_value,
                            uses_teacher)
from .config_loading import ConfigLoader, read_config_file
from .diagnostics import training_diagnostics
from .divergence import loss_guard
from .errors import CheckpointError, OutputWriteError, TeacherCacheError, TrainingDivergedError
from .evaluation import evaluate, get_metric, to_device, training_batch
from .glue.text_schema import adapt_text_schema
from .hooks import stage_position, tell_stage_length
from .losses.scheduled import find_scheduled_losses
from .stage_checkpoints import StageCheckpoints
from .stages import report_validation

logger = def_logger.getChild(__name__)

__all__ = ['load_config', 'apply_overrides', 'build_model', 'train_config', 'run_config', 'main']


def load_config(path, loader_class=ConfigLoader):
    """Loads a torchdistill YAML config (custom tags included) and imports its ``dependencies``.

    A config in the schema of torchdistill's text-classification script is adapted for the runner
    (:mod:`plugins.glue.text_schema`). Raises :class:`ConfigError` naming the file and field for a missing, empty or
    invalid file, a top level that is not a mapping, a tag whose call fails (e.g. a data set split that does not
    exist) or a missing dependency.
    """
    import plugins  # noqa: F401  (configs may name our keys without listing the dependency)
    config = read_config_file(path, loader_class)
    try:
        import_dependencies(config.get('dependencies', None))
    except (ImportError, TypeError, KeyError, AttributeError) as error:
        raise ConfigError(f'{path}: dependencies: {error}') from error
    config['teacher_cache'] = teacher_cache_settings(config.get('teacher_cache'))  # all fields, so --set works
    return adapt_text_schema(config)  # torchdistill's text-classification schema: tokenised datasets, HF models


def apply_overrides(config, overrides):
    """Sets dotted keys, e.g. ``{'train.stage1.num_epochs': 5}``; every key must already exist."""
    config = copy.copy(config)
    for dotted_key, value in (overrides or {}).items():
        node, keys = config, dotted_key.split('.')
        for key in keys[:-1]:
            if not isinstance(node, dict) or key not in node:
                raise ConfigError(f'override {dotted_key!r}: {key!r} is not in the config')
            node = node[key]
        if not isinstance(node, dict) or keys[-1] not in node:
            raise ConfigError(f'override {dotted_key!r}: {keys[-1]!r} is not in the config')
        node[keys[-1]] = value
    return config


def build_model(model_config, device, ckpt=None, field='model'):
    """A model from torchdistill's registry (``key`` + ``kwargs``), with ``src_ckpt`` (or ``ckpt``) loaded.

    The checkpoint is read with ``weights_only=True`` and must hold exactly the model's parameter names and
    shapes (:class:`CheckpointError` names the file otherwise); ``field`` names the model in errors. As with
    torchdistill's ``load_ckpt``, a checkpoint path with no file there leaves the initial weights (with a
    warning); :func:`train_config` never gets here with one (:func:`check_config` requires the files).
    """
    try:
        model = get_model(model_config['key'], model_config.get('repo_or_dir'), **(model_config.get('kwargs') or {}))
    except (TypeError, ValueError, KeyError) as error:
        raise ConfigError(f'{field}: cannot build model {model_config.get("key")!r}: {error}') from error
    source = f'{field} checkpoint' if ckpt else f'{field}.src_ckpt'
    ckpt = ckpt or model_config.get('src_ckpt')
    if ckpt is not None and not os.path.exists(os.path.expanduser(ckpt)):
        logger.warning('%s: no file at %r; the model keeps its initial weights', source, ckpt)
    elif ckpt is not None:
        load_model_weights(model, os.path.expanduser(ckpt), what=source)
    return model.to(device)


def _unwrap(model):
    return model.module if hasattr(model, 'module') else model


def _box_model(box):
    return box.student_model if hasattr(box, 'student_model') else box.model


def _train_one_epoch(box, device, epoch, show_progress):
    guard = loss_guard(box)
    total_loss, num_samples, start = 0.0, 0, time.perf_counter()
    batches = tqdm(box.train_data_loader, desc=f'epoch {epoch}', leave=False, disable=not show_progress)
    for step, batch in enumerate(batches):
        sample_batch, targets, supp_dict = training_batch(batch)  # text batches hold their labels: targets None
        sample_batch, targets = to_device(sample_batch, device), to_device(targets, device)
        loss = box.forward_process(sample_batch, targets, supp_dict)
        box.post_forward_process(loss=loss)
        value = loss.item()  # after the step, as before: reading it first would stall a GPU before backward
        # One process stops at once; under torchrun every rank ends the epoch and all stop together below.
        if guard.check(value, epoch, step) and not dist_util.is_distributed():
            raise TrainingDivergedError(guard.message)
        batch_size = len(targets if targets is not None else sample_batch['labels'])
        total_loss += value * batch_size
        num_samples += batch_size
        if show_progress:  # a disabled bar still formats its postfix
            batches.set_postfix(loss=f'{value:.4f}')
    total_loss, num_samples, diverged = dist_util.sum_across_ranks(total_loss, num_samples, guard.diverged)
    if diverged:
        raise TrainingDivergedError(guard.message or f'the training loss diverged on another rank in epoch {epoch}')
    return total_loss / max(num_samples, 1), int(num_samples), time.perf_counter() - start


def _peak_memory_mb(device):
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stage_checkpoints(box, output_dir, metric):
    """The run's :class:`StageCheckpoints` (``stage<k>_best.pt``, ``student_best.pt`` in ``output_dir``).

    A multi-stage box gets it attached, so that its ``keep_best_stage_checkpoints`` writes into ``output_dir``
    (the config's ``train.best_checkpoints`` paths are for drivers without an output folder); a single-stage
    run calls it directly.
    """
    checkpoints = StageCheckpoints(os.path.join(output_dir, 'student_best.pt'), metric=metric.name,
                                   stage_ckpt=os.path.join(output_dir, 'stage{stage}_best.pt'))
    if hasattr(box, 'stage_end_epoch'):
        box.stage_checkpoints = checkpoints
    return checkpoints


def train_config(config, device='cpu', seed=0, output_dir='runs/default', teacher_ckpt=None, show_progress=None):
    """Trains ``config`` (a loaded dict) and returns the result dict also written to ``result.json``."""
    check_device(device, field='device')
    check_seed(seed, field='seed')
    check_directory(output_dir, 'output_dir')
    device = torch.device(device)
    distributed, world_size, device_ids, device = dist_util.init_distributed(device)
    stages = check_config(config, teacher_ckpt=teacher_ckpt)
    config = apply_teacher_cache(config, stages)  # teacher_cache: declares the cache in stages that read the teacher
    main_process = dist_util.is_main_process()
    show_progress = (sys.stderr.isatty() if show_progress is None else show_progress) and main_process
    set_seed(seed)
    if device.type == 'cpu':
        torch.use_deterministic_algorithms(True, warn_only=True)
    metric = get_metric(config.get('evaluation', {}).get('metric', 'accuracy'))
    models = config['models']
    student_config = models.get('student_model', models.get('model'))
    student = build_model(student_config, device, field='models.student_model' if 'student_model' in models
                          else 'models.model')
    teacher = build_model(models['teacher_model'], device, ckpt=teacher_ckpt, field='models.teacher_model') \
        if any(uses_teacher(criterion) for _, _, criterion in stages) else None
    if teacher is not None:
        teacher.eval()
    eval_forward = (config['train'].get('student') or stages[0][1].get('student') or {}).get('forward_proc')
    train_cfg = copy.deepcopy(config['train'])
    box = get_distillation_box(teacher, student, config['datasets'], train_cfg, device, device_ids, distributed, 1) \
        if teacher is not None else \
        get_training_box(student, config['datasets'], train_cfg, device, device_ids, distributed, 1)
    release_idle_teacher(box)  # a stage whose criterion ignores the teacher skips it and keeps it on the CPU
    os.makedirs(output_dir, exist_ok=True)
    box.output_dir = output_dir  # lets a registered epoch hook save artifacts beside the run's checkpoints
    checkpoints = _stage_checkpoints(box, output_dir, metric)
    history, stage_number = [], 1
    train_samples, train_seconds, start = 0, 0.0, time.perf_counter()
    for epoch in range(box.num_epochs):
        dist_util.prepare_epoch(box, train_cfg, seed, device_ids)  # (re-)wrap in DDP, sampler as configured
        box.pre_epoch_process(epoch=epoch)
        tell_stage_length(box, stage_position(box, epoch)[1])  # also for stages without our pre-epoch process
        schedule = {type(loss).__name__: loss.state() for loss in find_scheduled_losses(box.criterion)}
        train_loss, samples, seconds = _train_one_epoch(box, device, epoch, show_progress)
        train_samples, train_seconds = train_samples + samples, train_seconds + seconds
        val = evaluate(student, box.val_data_loader, device, metric, eval_forward)
        report_validation(box, epoch, val[metric.primary])  # keep_best_stage_checkpoints takes it, evaluates nothing
        lr = box.optimizer.param_groups[0]['lr']
        box.post_epoch_process()  # multi-stage: keep_best_stage_checkpoints (Algorithm 1), then the stage switch
        if not hasattr(box, 'stage_end_epoch'):  # one stage: the driver keeps its best checkpoint, as any driver does
            last = epoch + 1 == box.num_epochs
            checkpoints.epoch_done(_unwrap(student), 1, epoch, val[metric.primary], stage_ends=last, run_ends=last)
        history.append({'epoch': epoch, 'stage': stage_number, 'train_loss': train_loss, 'val': val,
                        'schedule': schedule, 'lr': lr})
        logger.info('Epoch %d stage %d: train loss %.5f, val %s%s', epoch, stage_number, train_loss,
                    {k: round(v, 4) for k, v in val.items()}, ' (best)' if checkpoints.improved else '')
        if getattr(box, 'stage_number', 1) != stage_number:
            stage_number = box.stage_number
            release_idle_teacher(box)  # e.g. Annealing-KD's Stage II: no teacher forward, teacher off the GPU
    best = checkpoints.results[-1]['best_val']  # the student now holds the last stage's best checkpoint
    wall_time = time.perf_counter() - start
    box.clean_modules()
    test_loader = _test_loader(config, distributed)
    test = evaluate(student, test_loader, device, metric, eval_forward)
    extra_tests = {name: evaluate(student, _test_loader(config, distributed, name), device, metric, eval_forward)
                   for name in config['test'].get('extra_test_data_loaders') or {}}  # e.g. MNLI mismatched
    result = {
        'metric': metric.primary, 'higher_is_better': metric.higher_is_better, 'seed': seed,
        'best_val': best, 'test': test, 'extra_tests': extra_tests, 'stages': checkpoints.results, 'history': history,
        'epochs': box.num_epochs, 'world_size': world_size, 'wall_time_s': wall_time,
        'train_samples_per_s': train_samples / train_seconds if train_seconds > 0 else None,
        'peak_memory_mb': _peak_memory_mb(device),
        'student_params': sum(p.numel() for p in _unwrap(student).parameters()),
        'teacher_params': None if teacher is None else sum(p.numel() for p in teacher.parameters()),
        # dead ReLU units of the reported checkpoint on the training split; training-loss blow-ups per stage
        'diagnostics': training_diagnostics(_unwrap(student), box.train_data_loader, device, history),
    }
    if main_process:  # student_best.pt: written by the stage checkpoints when the last stage ended
        atomic_write_json(os.path.join(output_dir, 'result.json'), result)
    logger.info('Test %s', {k: round(v, 4) for k, v in test.items()})
    return result


def _test_loader(config, distributed, extra_name=None):
    from torchdistill.datasets.util import build_data_loader
    loader_config = config['test']['test_data_loader'] if extra_name is None else \
        config['test']['extra_test_data_loaders'][extra_name]
    if loader_config.get('dataset_id') not in config['datasets']:
        raise ConfigError(f"test loader {extra_name or 'test_data_loader'}: dataset_id "
                          f"{loader_config.get('dataset_id')!r} is not among the datasets {sorted(config['datasets'])}")
    return build_data_loader(config['datasets'][loader_config['dataset_id']], loader_config, distributed)


def run_config(config_path, device='cpu', seed=0, output_dir=None, teacher_ckpt=None, overrides=None,
               show_progress=None, log_file=None):
    """Loads, checks and trains the config at ``config_path``; see :func:`train_config`."""
    check_device(device)
    check_seed(seed)
    config = apply_overrides(load_config(config_path), overrides)
    if output_dir is None:
        output_dir = os.path.join('runs', os.path.splitext(os.path.basename(config_path))[0], f'seed{seed}')
    check_directory(output_dir, '--output-dir')
    log_file = log_file or os.path.join(output_dir, 'train.log')
    if os.path.isdir(log_file):
        raise ConfigError(f'--log-file: {log_file!r} is a directory; give a file path')
    check_directory(os.path.dirname(os.path.abspath(log_file)), '--log-file')
    dist_util.init_distributed(torch.device(device))
    handler = None
    if dist_util.is_main_process():
        try:
            os.makedirs(output_dir, exist_ok=True)
            handler = _LogFileHandler(log_file, mode='w')
        except OSError as error:
            raise OutputWriteError(error.errno, f'cannot write {log_file}: {error.strerror or error}') from error
        handler.setFormatter(logging.Formatter(LOGGING_FORMAT))
        def_logger.addHandler(handler)
        if def_logger.getEffectiveLevel() > logging.INFO:
            def_logger.setLevel(logging.INFO)
    try:
        return train_config(config, device=device, seed=seed, output_dir=output_dir, teacher_ckpt=teacher_ckpt,
                            show_progress=show_progress)
    finally:
        if handler is not None:  # one log per run, also when a harness runs many in one process
            def_logger.removeHandler(handler)
            handler.close()


class _LogFileHandler(logging.FileHandler):
    """``train.log``: a failed write (e.g. a full disk) warns once and stops the log instead of printing a
    traceback for every later line; the run's atomic result files report the disk problem by name."""

    failed = False

    def emit(self, record):
        if not self.failed:
            super().emit(record)

    def handleError(self, record):
        if not self.failed:
            self.failed = True
            error = sys.exc_info()[1]
            sys.stderr.write(f'warning: cannot write the log file {self.baseFilename} ({error}); it stops here\n')


def _parse_value(text):
    return parse_value(text)  # 1e-3 is a number, as a user means it (YAML 1.1 alone reads it as a string)


def get_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True, help='torchdistill YAML config')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (default: cpu)")
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--output-dir', help='where checkpoints, result.json and train.log go '
                                             '(default: runs/<config name>/seed<seed>)')
    parser.add_argument('--teacher-ckpt', help="teacher checkpoint; overrides models.teacher_model.src_ckpt")
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override an existing config value, e.g. --set train.stage1.num_epochs=5')
    parser.add_argument('--log-file', help='log file (default: <output-dir>/train.log)')
    return parser.parse_args(argv)


def main(argv=None):
    """The command line; every expected failure ends with one ``error:`` line and exit status 1, no traceback."""
    args = get_args(argv)
    set_basic_log_config()
    def_logger.setLevel(logging.INFO)
    overrides = {}
    for item in args.set:
        if '=' not in item:
            raise SystemExit(f'--set expects KEY=VALUE, got {item!r}')
        key, value = item.split('=', 1)
        overrides[key] = _parse_value(value)
    try:
        result = run_config(args.config, device=args.device, seed=args.seed, output_dir=args.output_dir,
                            teacher_ckpt=args.teacher_ckpt, overrides=overrides, log_file=args.log_file)
    except ConfigError as error:
        raise SystemExit(f'config error: {error}')
    except (CheckpointError, TrainingDivergedError, TeacherCacheError, OutputWriteError) as error:
        raise SystemExit(f'error: {error}')
    except FileNotFoundError as error:  # a data set or checkpoint that is not on this machine
        raise SystemExit(f'error: {error}')
    finally:
        dist_util.cleanup()
    if dist_util.is_main_process():
        print(f"test {result['metric']}: {result['test'][result['metric']]:.4f} "
              f"(best validation {result['best_val']:.4f})")


if __name__ == '__main__':
    main()
