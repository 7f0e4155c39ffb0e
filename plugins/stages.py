"""Annealing-KD's Algorithm 1 under any torchdistill driver: the post-epoch process ``keep_best_stage_checkpoints``.

torchdistill's ``MultiStagesDistillationBox`` starts a stage from the weights of the previous stage's last epoch,
and drivers such as torchdistill's example scripts keep one best checkpoint over all stages. Algorithm 1 starts
Stage II from the best Stage-I checkpoint on validation and ends on the best Stage-II checkpoint. Every stage of a
multi-stage config names this post-epoch process, which after torchdistill's default post-epoch process:

1. takes this epoch's validation value from the driver when the driver left it on the box
   (:func:`report_validation`; our runner does), else evaluates the box's validation loader itself;
2. keeps the best checkpoint of the current stage (:class:`~plugins.stage_checkpoints.StageCheckpoints`);
3. at a stage's last epoch loads that checkpoint into the student, before torchdistill sets the next stage up;
4. at the last epoch of the last stage writes those weights to ``dst_ckpt`` in the driver's format, so a
   driver that reloads its final checkpoint (the image script reloads ``models.student_model.dst_ckpt``) ends
   with Algorithm 1's student.

Its settings sit in the train section, which torchdistill passes to the box whole (and otherwise ignores):

.. code-block:: yaml

    models:
      student_model:
        key: 'resnet8'
        kwargs: {num_classes: 10}
        dst_ckpt: &dst_ckpt './runs/cifar10/annealing_kd/resnet8_from_resnet110/student_best.pt'
    train:
      best_checkpoints:              # read by keep_best_stage_checkpoints
        dst_ckpt: *dst_ckpt          # must be the driver's final checkpoint
        dst_format: 'torchdistill'   # or 'save_pretrained' (a Hugging Face folder)
        metric: 'accuracy'           # a plugins.evaluation metric; = evaluation.metric
      stage1: {post_epoch_process: 'keep_best_stage_checkpoints', ...}
      stage2: {post_epoch_process: 'keep_best_stage_checkpoints', ...}
"""
import os
from typing import Callable, Optional

import torch
from torchdistill.common.constant import def_logger
from torchdistill.common.module_util import check_if_wrapped
from torchdistill.core.interfaces.post_epoch_proc import default_post_epoch_process_with_teacher, \
    default_post_epoch_process_without_teacher
from torchdistill.core.interfaces.registry import POST_EPOCH_PROC_FUNC_DICT

from .config_util import check_choice, settings_with_defaults, stage_config, stage_configs, student_forward_proc
from .evaluation import METRICS, evaluate
from .hooks import TEACHER_EVAL_PRE_EPOCH_PROCESSES, put_teacher_in_eval_mode
from .registry import register_new_post_epoch_proc_func
from .stage_checkpoints import DST_FORMATS, StageCheckpoints

logger = def_logger.getChild(__name__)

__all__ = ['SETTINGS_KEY', 'best_checkpoint_settings', 'report_validation', 'box_student', 'stage_checkpoints_of',
           'keeps_best_stage_checkpoints', 'keep_best_stage_checkpoints', 'check_stage_hooks']

SETTINGS_KEY = 'best_checkpoints'  # not 'stage...': torchdistill sums num_epochs over the train keys named stage*
SETTINGS_DEFAULTS = {'dst_ckpt': None, 'dst_format': 'torchdistill', 'metric': 'accuracy', 'stage_ckpt': None}


def best_checkpoint_settings(train_config: dict) -> dict:
    """The validated ``train.best_checkpoints`` section with defaults filled in; ``ValueError`` names the field."""
    field = f'train.{SETTINGS_KEY}'
    settings = settings_with_defaults(
        train_config.get(SETTINGS_KEY), field, SETTINGS_DEFAULTS,
        f'dst_ckpt (= models.student_model.dst_ckpt) and optionally {sorted(set(SETTINGS_DEFAULTS) - {"dst_ckpt"})}')
    if not isinstance(settings['dst_ckpt'], str) or not settings['dst_ckpt']:
        raise ValueError(f"{field}.dst_ckpt must be the driver's final checkpoint path (models.student_model.dst_ckpt)"
                         f", got {settings['dst_ckpt']!r}")
    check_choice(settings['dst_format'], f'{field}.dst_format', DST_FORMATS)
    check_choice(settings['metric'], f'{field}.metric', sorted(METRICS))
    stage_ckpt = settings['stage_ckpt']
    if stage_ckpt is not None and (not isinstance(stage_ckpt, str) or '{stage}' not in stage_ckpt):
        raise ValueError(f'{field}.stage_ckpt must be a path with a {{stage}} field (one file per stage) or null, '
                         f'got {stage_ckpt!r}')
    checkpoints = StageCheckpoints(**settings)
    stage_paths = {os.path.abspath(checkpoints.stage_path(n)) for n in range(1, len(stage_configs(train_config)) + 1)}
    if os.path.abspath(checkpoints.dst_ckpt) in stage_paths:
        raise ValueError(f'{field}.stage_ckpt names the same file as dst_ckpt {settings["dst_ckpt"]!r}, which the '
                         f'driver writes itself')
    return settings


def report_validation(box, epoch: int, value: float) -> None:
    """Leaves this epoch's validation value on the box, so that ``keep_best_stage_checkpoints`` needs no evaluation."""
    box.epoch_validation = (int(epoch), float(value))


def box_student(box) -> torch.nn.Module:
    """The box's student, unwrapped (the module whose ``state_dict`` drivers save and reload)."""
    model = box.org_student_model if hasattr(box, 'org_student_model') else box.org_model
    return model.module if check_if_wrapped(model) else model


def stage_checkpoints_of(box) -> StageCheckpoints:
    """The box's :class:`StageCheckpoints`: one a driver attached as ``box.stage_checkpoints``, else one built
    from ``train.best_checkpoints``."""
    checkpoints = getattr(box, 'stage_checkpoints', None)
    if checkpoints is None:
        checkpoints = StageCheckpoints(**best_checkpoint_settings(box.train_config))
        box.stage_checkpoints = checkpoints
    return checkpoints


def _validation_value(box, checkpoints, epoch):
    reported = getattr(box, 'epoch_validation', None)
    if reported is not None and reported[0] == epoch:
        return reported[1]
    stage = stage_config(box.train_config, box.stage_number)
    result = evaluate(box_student(box), box.val_data_loader, box.device, checkpoints.metric,
                      student_forward_proc(stage))
    logger.info('Epoch %d: validation %s', epoch, {key: round(value, 4) for key, value in result.items()})
    return result[checkpoints.metric.primary]


def keeps_best_stage_checkpoints(func: Callable) -> Callable:
    """Marks a post-epoch process that runs ``keep_best_stage_checkpoints`` (a config check looks for the mark)."""
    func.keeps_best_stage_checkpoints = True
    return func


@register_new_post_epoch_proc_func
@keeps_best_stage_checkpoints
def keep_best_stage_checkpoints(self, metrics: Optional[dict] = None, **kwargs) -> None:
    """torchdistill's default post-epoch process, then Algorithm 1's checkpoints (see the module docstring).

    For multi-stage boxes (``train.stage1``, ``train.stage2``, ...); name it in every stage.
    """
    if hasattr(self, 'teacher_model'):
        default_post_epoch_process_with_teacher(self, metrics=metrics, **kwargs)
        put_teacher_in_eval_mode(self)
    else:
        default_post_epoch_process_without_teacher(self, metrics=metrics, **kwargs)
    if not hasattr(self, 'stage_end_epoch'):
        raise RuntimeError("post_epoch_process 'keep_best_stage_checkpoints' is for multi-stage configs (train.stage1, "
                           'train.stage2, ...); with one stage the driver keeps the best checkpoint itself')
    checkpoints = stage_checkpoints_of(self)
    epoch = self.current_epoch  # the epoch just trained; MultiStages*Box counts it after this process
    value = _validation_value(self, checkpoints, epoch)
    checkpoints.epoch_done(box_student(self), self.stage_number, epoch, value,
                           stage_ends=epoch + 1 == self.stage_end_epoch, run_ends=epoch + 1 == self.num_epochs)


def _post_process_keeps_checkpoints(name):
    return bool(name) and getattr(POST_EPOCH_PROC_FUNC_DICT.get(name), 'keeps_best_stage_checkpoints', False)


def check_stage_hooks(config: dict, stages: list, reads_teacher: bool) -> None:
    """``ValueError`` unless ``config`` carries the hooks that keep it correct under any driver.

    ``stages``: [(field, stage config)] in training order. With a teacher every stage names one of our pre-epoch
    processes (the teacher in eval mode); a multi-stage config names ``keep_best_stage_checkpoints`` in every
    stage, with ``train.best_checkpoints`` agreeing with ``models.student_model.dst_ckpt`` and
    ``evaluation.metric``; a single-stage config does not name it.
    """
    multi_stage = 'stage1' in config['train']
    for field, stage in stages:
        if reads_teacher and stage.get('pre_epoch_process') not in TEACHER_EVAL_PRE_EPOCH_PROCESSES:
            raise ValueError(f'{field}.pre_epoch_process must be one of {list(TEACHER_EVAL_PRE_EPOCH_PROCESSES)} '
                             f'(the teacher in eval mode every epoch under any driver), got '
                             f'{stage.get("pre_epoch_process")!r}')
        keeps = _post_process_keeps_checkpoints(stage.get('post_epoch_process'))
        if multi_stage and not keeps:
            raise ValueError(f"{field}.post_epoch_process must be 'keep_best_stage_checkpoints' (Algorithm 1: each "
                             f'stage ends on its best checkpoint), got {stage.get("post_epoch_process")!r}')
        if not multi_stage and keeps:
            raise ValueError(f"{field}.post_epoch_process {stage['post_epoch_process']!r} is for multi-stage configs; "
                             'with one stage the driver keeps the best checkpoint itself')
    if not multi_stage:
        return
    settings = best_checkpoint_settings(config['train'])
    models = config['models']
    student = models.get('student_model', models.get('model')) or {}
    name = 'student_model' if 'student_model' in models else 'model'
    if student.get('dst_ckpt') != settings['dst_ckpt']:
        raise ValueError(f"train.{SETTINGS_KEY}.dst_ckpt {settings['dst_ckpt']!r} must be models.{name}.dst_ckpt "
                         f"({student.get('dst_ckpt')!r}): the driver reloads that file as the final student")
    metric = config.get('evaluation', {}).get('metric', 'accuracy')
    if settings['metric'] != metric:
        raise ValueError(f"train.{SETTINGS_KEY}.metric {settings['metric']!r} must be evaluation.metric {metric!r}")
