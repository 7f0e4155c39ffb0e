"""Trains any torchdistill YAML config: ``python -m plugins.runner --config CONFIG.yaml``.

torchdistill's example scripts are not part of its pip package, so this is the project's runner (the configs
also run under those scripts), in named steps as those scripts have (:func:`train_and_test`): check the config
and build each stage's criterion, build the models and the box, train the stages, test, assemble the result. It
loads the teacher from its checkpoint (train a teacher by running its own, teacher-less config), trains the
student stage by stage with torchdistill's (MultiStages)DistillationBox or TrainingBox and validates every epoch.
The best checkpoint of each stage on the validation split is kept by the configs' post-epoch process
``keep_best_stage_checkpoints`` (plugins/stages.py), which, as Annealing-KD's Algorithm 1 requires, gives it back
to the student before the next stage starts; the runner hands it each epoch's validation value. The best
checkpoint of the last stage is evaluated once on the test split. Works under ``torchrun`` (NCCL on GPUs, gloo on
CPUs).

Outputs in ``--output-dir``: ``student_best.pt`` (torchdistill checkpoint format), ``result.json`` (metrics,
per-epoch history with the schedule's T / Phi / lambda), written atomically, and ``train.log``, appended line by
line as training goes. Checkpoints are read with ``weights_only=True`` and checked against the model first.
Every bad input stops the run before training with one line that names the field or file
(:mod:`plugins.errors`); a loss that becomes non-finite or explodes stops it with
:class:`~plugins.errors.TrainingDivergedError`.
"""
import argparse
import contextlib
import copy
import dataclasses
import logging
import os
import resource
import sys
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import torch
from torchdistill.common.constant import def_logger
from torchdistill.common.main_util import import_dependencies, set_seed
from torchdistill.core.distillation import get_distillation_box
from torchdistill.core.training import get_training_box
from torchdistill.misc.log import LOGGING_FORMAT, set_basic_log_config
from torchdistill.models.registry import get_model
from tqdm import tqdm

from . import distributed as dist_util
from .atomic_files import atomic_write_json
from .caching import apply_teacher_cache, teacher_cache_settings
from .checkpoint import load_model_weights
from .config_checks import CheckedStage, check_device, check_directory, check_seed, checked_stages, parse_value
from .config_loading import ConfigLoader, read_config_file
from .config_util import apply_overrides, student_forward_proc, uses_teacher
from .diagnostics import training_diagnostics
from .divergence import loss_guard
from .errors import CheckpointError, ConfigError, OutputWriteError, TeacherCacheError, TrainingDivergedError
from .evaluation import Metric, evaluate, get_metric, to_device, training_batch
from .glue.text_schema import adapt_text_schema
from .hooks import stage_position, tell_stage_length
from .idle_teacher import release_idle_teacher
from .losses.scheduled import find_scheduled_losses
from .stage_checkpoints import StageCheckpoints
from .stages import report_validation

logger = def_logger.getChild(__name__)

__all__ = ['load_config', 'apply_overrides', 'build_model', 'train_and_test', 'run_config', 'main']


def load_config(path: str, loader_class: type = ConfigLoader) -> dict:
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


def build_model(model_config: Mapping, device: torch.device, ckpt: Optional[str] = None,
                field: str = 'model') -> torch.nn.Module:
    """A model from torchdistill's registry (``key`` + ``kwargs``), with ``src_ckpt`` (or ``ckpt``) loaded.

    The checkpoint is read with ``weights_only=True`` and must hold exactly the model's parameter names and
    shapes (:class:`CheckpointError` names the file otherwise); ``field`` names the model in errors. As with
    torchdistill's ``load_ckpt``, a checkpoint path with no file there leaves the initial weights (with a
    warning); :func:`train_and_test` never gets here with one (:func:`checked_stages` requires the files).
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


@dataclasses.dataclass
class _Run:
    """What the steps of one run share."""
    box: Any  # torchdistill's (MultiStages)DistillationBox or TrainingBox
    student: torch.nn.Module
    teacher: Optional[torch.nn.Module]
    metric: Metric
    eval_forward: Optional[str]  # the student's forward_proc, for validation and test
    train_config: dict  # the box's copy of the train section
    stage_epochs: List[int]  # epochs of each stage, in order
    checkpoints: StageCheckpoints  # the best-checkpoint keeper (Algorithm 1)
    device: torch.device
    device_ids: Optional[List[int]]
    history: List[dict] = dataclasses.field(default_factory=list)  # one entry per epoch
    train_samples: int = 0
    train_seconds: float = 0.0


def _build(config: dict, stages: List[CheckedStage], device, device_ids, distributed, teacher_ckpt,
           output_dir) -> _Run:
    """Step 1: the student, the teacher (when a stage reads it), the box and the best-checkpoint keeper."""
    metric = get_metric(config.get('evaluation', {}).get('metric', 'accuracy'))
    models = config['models']
    student_config = models.get('student_model', models.get('model'))
    student = build_model(student_config, device, field='models.student_model' if 'student_model' in models
                          else 'models.model')
    teacher = build_model(models['teacher_model'], device, ckpt=teacher_ckpt, field='models.teacher_model') \
        if any(uses_teacher(stage.criterion) for stage in stages) else None
    if teacher is not None:
        teacher.eval()
    eval_forward = student_forward_proc(config['train']) or student_forward_proc(stages[0].config)
    train_cfg = copy.deepcopy(config['train'])
    box = get_distillation_box(teacher, student, config['datasets'], train_cfg, device, device_ids, distributed, 1) \
        if teacher is not None else \
        get_training_box(student, config['datasets'], train_cfg, device, device_ids, distributed, 1)
    release_idle_teacher(box)  # a stage whose criterion ignores the teacher skips it and keeps it on the CPU
    os.makedirs(output_dir, exist_ok=True)
    box.output_dir = output_dir  # lets a registered epoch hook save artifacts beside the run's checkpoints
    checkpoints = StageCheckpoints(os.path.join(output_dir, 'student_best.pt'), metric=metric.name,
                                   stage_ckpt=os.path.join(output_dir, 'stage{stage}_best.pt'))
    if hasattr(box, 'stage_end_epoch'):  # its keep_best_stage_checkpoints writes here, not to train.best_checkpoints
        box.stage_checkpoints = checkpoints
    return _Run(box, student, teacher, metric, eval_forward, train_cfg,
                [stage.config['num_epochs'] for stage in stages], checkpoints, device, device_ids)


def _train_epoch(run: _Run, epoch: int, stage_number: int, seed: int, show_progress: bool) -> None:
    """One epoch: train, validate, let the best-checkpoint keeper see the validation value, record the epoch."""
    box = run.box
    dist_util.prepare_epoch(box, run.train_config, seed, run.device_ids)  # (re-)wrap in DDP, sampler as configured
    box.pre_epoch_process(epoch=epoch)
    tell_stage_length(box, stage_position(box, epoch)[1])  # also for stages without our pre-epoch process
    schedule = {type(loss).__name__: loss.state() for loss in find_scheduled_losses(box.criterion)}
    train_loss, samples, seconds = _train_one_epoch(box, run.device, epoch, show_progress)
    val = evaluate(run.student, box.val_data_loader, run.device, run.metric, run.eval_forward)
    report_validation(box, epoch, val[run.metric.primary])  # keep_best_stage_checkpoints takes it, evaluates nothing
    lr = box.optimizer.param_groups[0]['lr']
    box.post_epoch_process()  # multi-stage: keep_best_stage_checkpoints (Algorithm 1), then the stage switch
    if len(run.stage_epochs) == 1:  # one stage: the driver keeps its best checkpoint, as any driver does
        last = epoch + 1 == box.num_epochs
        run.checkpoints.epoch_done(_unwrap(run.student), 1, epoch, val[run.metric.primary], stage_ends=last,
                                   run_ends=last)
    run.history.append({'epoch': epoch, 'stage': stage_number, 'train_loss': train_loss, 'val': val,
                        'schedule': schedule, 'lr': lr})
    run.train_samples, run.train_seconds = run.train_samples + samples, run.train_seconds + seconds
    logger.info('Epoch %d stage %d: train loss %.5f, val %s%s', epoch, stage_number, train_loss,
                {k: round(v, 4) for k, v in val.items()}, ' (best)' if run.checkpoints.improved else '')


def _train_stages(run: _Run, seed: int, show_progress: bool) -> None:
    """Step 2: every stage, epoch by epoch (Algorithm 1); each stage ends on its best checkpoint."""
    for stage_number, num_epochs in enumerate(run.stage_epochs, 1):
        if stage_number > 1:  # the box set this stage up at the end of the last one
            release_idle_teacher(run.box)  # e.g. Annealing-KD's Stage II: no teacher forward, teacher off the GPU
        for _ in range(num_epochs):
            _train_epoch(run, len(run.history), stage_number, seed, show_progress)


def _test(run: _Run, config: dict, distributed: bool) -> Tuple[Dict[str, float], Dict[str, Dict[str, float]]]:
    """Step 3: the student (now the last stage's best checkpoint) on the test split and any extra test splits."""
    run.box.clean_modules()
    test = evaluate(run.student, _test_loader(config, distributed), run.device, run.metric, run.eval_forward)
    extra_tests = {name: evaluate(run.student, _test_loader(config, distributed, name), run.device, run.metric,
                                  run.eval_forward)
                   for name in config['test'].get('extra_test_data_loaders') or {}}  # e.g. MNLI mismatched
    return test, extra_tests


def _result(run: _Run, seed: int, world_size: int, wall_time: float, tests: Tuple[dict, dict]) -> dict:
    """Step 4: the result written to ``result.json`` (``wall_time``: seconds of the training loop)."""
    test, extra_tests = tests
    return {
        'metric': run.metric.primary, 'higher_is_better': run.metric.higher_is_better, 'seed': seed,
        'best_val': run.checkpoints.results[-1]['best_val'], 'test': test, 'extra_tests': extra_tests,
        'stages': run.checkpoints.results, 'history': run.history, 'epochs': run.box.num_epochs,
        'world_size': world_size, 'wall_time_s': wall_time,
        'train_samples_per_s': run.train_samples / run.train_seconds if run.train_seconds > 0 else None,
        'peak_memory_mb': _peak_memory_mb(run.device),
        'student_params': sum(p.numel() for p in _unwrap(run.student).parameters()),
        'teacher_params': None if run.teacher is None else sum(p.numel() for p in run.teacher.parameters()),
        # dead ReLU units of the reported checkpoint on the training split; training-loss blow-ups per stage
        'diagnostics': training_diagnostics(_unwrap(run.student), run.box.train_data_loader, run.device,
                                            run.history),
    }


def train_and_test(config: dict, device: str = 'cpu', seed: int = 0, output_dir: str = 'runs/default',
                   teacher_ckpt: Optional[str] = None, show_progress: Optional[bool] = None) -> dict:
    """Trains a loaded ``config`` and tests its final student; returns the result also written to ``result.json``.

    The arguments are those :func:`run_config` checked. The steps: check the config and build each stage's
    criterion, build the models and the box, train the stages, test, assemble the result.
    """
    distributed, world_size, device_ids, device = dist_util.init_distributed(torch.device(device))
    stages = checked_stages(config, teacher_ckpt=teacher_ckpt)
    config = apply_teacher_cache(config, stages)  # teacher_cache: declares the cache in stages that read the teacher
    show_progress = (sys.stderr.isatty() if show_progress is None else show_progress) and \
        dist_util.is_main_process()
    set_seed(seed)
    if device.type == 'cpu':
        torch.use_deterministic_algorithms(True, warn_only=True)
    run = _build(config, stages, device, device_ids, distributed, teacher_ckpt, output_dir)
    start = time.perf_counter()
    _train_stages(run, seed, show_progress)
    wall_time = time.perf_counter() - start
    result = _result(run, seed, world_size, wall_time, _test(run, config, distributed))
    if dist_util.is_main_process():  # student_best.pt: written by the stage checkpoints when the last stage ended
        atomic_write_json(os.path.join(output_dir, 'result.json'), result)
    logger.info('Test %s', {k: round(v, 4) for k, v in result['test'].items()})
    return result


def _test_loader(config, distributed, extra_name=None):
    from torchdistill.datasets.util import build_data_loader
    loader_config = config['test']['test_data_loader'] if extra_name is None else \
        config['test']['extra_test_data_loaders'][extra_name]
    if loader_config.get('dataset_id') not in config['datasets']:
        raise ConfigError(f"test loader {extra_name or 'test_data_loader'}: dataset_id "
                          f"{loader_config.get('dataset_id')!r} is not among the datasets {sorted(config['datasets'])}")
    return build_data_loader(config['datasets'][loader_config['dataset_id']], loader_config, distributed)


def run_config(config_path: str, device: str = 'cpu', seed: int = 0, output_dir: Optional[str] = None,
               teacher_ckpt: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None,
               show_progress: Optional[bool] = None, log_file: Optional[str] = None) -> dict:
    """Loads, checks and trains the config at ``config_path``; see :func:`train_and_test`.

    ``device``, ``seed``, ``output_dir`` and ``log_file`` are checked here, before anything is loaded or written.
    """
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
    with _run_log(output_dir, log_file):
        return train_and_test(config, device=device, seed=seed, output_dir=output_dir, teacher_ckpt=teacher_ckpt,
                              show_progress=show_progress)


@contextlib.contextmanager
def _run_log(output_dir: str, log_file: str) -> Iterator[None]:
    """The run's ``train.log`` (the main process writes it), attached to torchdistill's logger for the run only."""
    if not dist_util.is_main_process():
        yield
        return
    try:
        os.makedirs(output_dir, exist_ok=True)
        handler = _LogFileHandler(log_file, mode='a', delay=True)  # a rerun into the directory keeps the earlier log
    except OSError as error:
        raise OutputWriteError(error.errno, f'cannot write {log_file}: {error.strerror or error}') from error
    handler.setFormatter(logging.Formatter(LOGGING_FORMAT))
    def_logger.addHandler(handler)
    if def_logger.getEffectiveLevel() > logging.INFO:
        def_logger.setLevel(logging.INFO)
    try:
        yield
    finally:  # one log per run, also when a harness runs many in one process
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


def get_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
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


def main(argv: Optional[List[str]] = None) -> None:
    """The command line; every expected failure ends with one ``error:`` line and exit status 1, no traceback."""
    args = get_args(argv)
    set_basic_log_config()
    def_logger.setLevel(logging.INFO)
    overrides = {}
    for item in args.set:
        if '=' not in item:
            raise SystemExit(f'--set expects KEY=VALUE, got {item!r}')
        key, value = item.split('=', 1)
        overrides[key] = parse_value(value)  # 1e-3 is a number, as a user means it (YAML 1.1 reads it as text)
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
