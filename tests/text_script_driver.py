"""A test driver that calls torchdistill's public API in the order its text-classification example does.

torchdistill's ``examples/hf_transformers/text_classification.py`` (checked against the repository at commit
3e4373c45214c5c56eebac481d5bfe8b8735aa05; torchdistill 1.1.5 installed) is not part of the pip package and is
not copied here. What matters for our plugins is the order of its calls, which this driver follows:

1. ``set_seed(--seed)``; the teacher, then the student, each as ``AutoConfig.from_pretrained(**config_kwargs)``,
   ``AutoTokenizer.from_pretrained(**tokenizer_kwargs)`` and ``AutoModelForSequenceClassification.from_pretrained(
   config=..., **model_kwargs)`` whose checkpoint is the entry's ``dst_ckpt`` when that exists (the teacher only),
   else its ``src_ckpt`` when that exists, else ``model_kwargs``'s;
2. the datasets tokenised by the student's tokenizer as ``preprocess`` says (the script's ``custom`` package is not
   installed either: :func:`plugins.glue.text_schema.preprocess_text_datasets`, which follows its semantics, stands
   in for it); ``num_training_steps`` filled in every stage that has a scheduler and a training loader (its
   batches x epochs); ``DataCollatorWithPadding`` for the student's tokenizer registered as a collate function;
3. the (multi-stage) distillation box, or the training box without a teacher; ``train.log_freq`` read;
4. ``best = 0.0``; every epoch: ``pre_epoch_process(epoch=...)``, the training loop
   (``forward_process(batch, targets=None, supp_dict=None)`` with the labels inside the batch,
   ``post_forward_process``), validation of the student with the config's ``metrics`` objects (labels popped,
   ``model(**batch)``, logits or arg-max as ``evaluate.metrics`` says, ``evaluate.main_metric``), the student's
   ``save_pretrained(dst_ckpt)`` when the value beats ``best``, then ``post_epoch_process()``;
5. the tokenizer saved into ``dst_ckpt``; the test loader; the teacher evaluated on it; the student reloaded
   preferring ``dst_ckpt`` and evaluated on it.

The script never leaves its validation result on the box; ``report_validation=True`` makes this driver do so,
as our runner does, so that the tests cover both kinds of driver.
"""
import math
import os

import torch
from torchdistill.common.main_util import set_seed
from torchdistill.core.distillation import get_distillation_box
from torchdistill.core.training import get_training_box
from torchdistill.datasets.registry import register_collate_func
from torchdistill.datasets.util import build_data_loader

from plugins.evaluation import to_device
from plugins.glue.text_schema import preprocess_text_datasets
from plugins.stages import report_validation as leave_validation_on_box

__all__ = ['run_like_text_script', 'load_tokenizer_and_model', 'evaluate_like_text_script']


def _exists(path):
    return path is not None and os.path.exists(path)


def load_tokenizer_and_model(model_config, prefers_dst_ckpt=False):
    """(tokenizer, model) of a model entry, the checkpoint chosen as the script chooses it."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(**model_config['config_kwargs'], finetuning_task=None)
    tokenizer = AutoTokenizer.from_pretrained(**model_config['tokenizer_kwargs'])
    model_kwargs = dict(model_config['model_kwargs'])
    if prefers_dst_ckpt and _exists(model_config.get('dst_ckpt')):
        model_kwargs['pretrained_model_name_or_path'] = model_config['dst_ckpt']
    elif _exists(model_config.get('src_ckpt')):
        model_kwargs['pretrained_model_name_or_path'] = model_config['src_ckpt']
    return tokenizer, AutoModelForSequenceClassification.from_pretrained(config=config, **model_kwargs)


def _fill_training_steps(train_config, dataset_dict):
    stages = [train_config[key] for key in sorted(train_config) if key.startswith('stage')] or [train_config]
    for stage in stages:
        if 'scheduler' not in stage or 'train_data_loader' not in stage:
            continue
        loader = stage['train_data_loader']
        batches = math.ceil(len(dataset_dict[loader['dataset_id']]) / loader['kwargs']['batch_size']
                            / stage.get('grad_accum_step', 1))
        stage['scheduler']['kwargs']['num_training_steps'] = batches * stage['num_epochs']


@torch.inference_mode()
def evaluate_like_text_script(model, data_loader, metric_dict, evaluate_config, device='cpu'):
    """(main value, {figure: value}) over ``data_loader``; the model is left in eval mode, as the script leaves it."""
    model.eval()
    metrics_config = evaluate_config.get('metrics', {})
    for batch in data_loader:
        batch = to_device(dict(batch), device)
        labels = batch.pop('labels')
        outputs = model(**batch)
        for key, metric in metric_dict.items():
            settings = metrics_config.get(key, {})
            if settings.get('argmax', True):
                metric.add_batch(predictions=outputs.logits.argmax(dim=-1), references=labels)
            else:
                metric.add_batch(prediction_scores=outputs.logits, references=labels)
    values = {}
    for key, metric in metric_dict.items():
        values.update(metric.compute(**metrics_config.get(key, {}).get('compute', {})))
    return values[evaluate_config['main_metric']], values


def _train_one_epoch(box):
    for batch in box.train_data_loader:
        loss = box.forward_process(batch, targets=None, supp_dict=None)
        box.post_forward_process(loss=loss)


def _build(config, device):
    models = config['models']
    teacher_config = models.get('teacher_model')
    teacher = None if teacher_config is None else load_tokenizer_and_model(teacher_config, True)[1]
    student_config = models['student_model'] if 'student_model' in models else models['model']
    tokenizer, student = load_tokenizer_and_model(student_config)
    dataset_dict = preprocess_text_datasets(config['datasets'], tokenizer, **config['preprocess'])
    _fill_training_steps(config['train'], dataset_dict)
    from transformers import DataCollatorWithPadding
    register_collate_func(DataCollatorWithPadding(tokenizer))
    train_config = config['train']
    box = get_training_box(student, dataset_dict, train_config, device, None, False, 1) if teacher is None \
        else get_distillation_box(teacher, student, dataset_dict, train_config, device, None, False, 1)
    _ = train_config['log_freq']  # the script reads it: a config without it stops with a KeyError
    return teacher, tokenizer, student, student_config, dataset_dict, box


def run_like_text_script(config, device='cpu', validate=None, on_box=None, on_epoch_start=None, after_training=None,
                         report_validation=False, seed=0):
    """Trains ``config`` (a loaded YAML dict) in the text script's call order; returns what the tests inspect.

    ``validate(box, epoch, student)`` replaces the validation value (scripted values); ``on_box(box)`` sees the box
    once built; ``on_epoch_start(box, epoch)`` runs after the pre-epoch process, ``after_training(box, epoch)``
    after the epoch's training loop. Returns a dict with the ``student``
    (reloaded from ``dst_ckpt``), ``teacher``, ``box``, ``dataset_dict``, per-epoch ``val`` values, the epochs at
    which ``dst_ckpt`` was saved (``saved``), and the ``test`` figures of the student and ``teacher_test`` of the
    teacher.
    """
    set_seed(seed)  # the script's --seed
    device = torch.device(device)
    teacher, tokenizer, student, student_config, dataset_dict, box = _build(config, device)
    if on_box is not None:
        on_box(box)
    dst_ckpt, metric_dict, evaluate_config = student_config['dst_ckpt'], config['metrics'], config['evaluate']
    best, vals, saved = 0.0, [], []
    for epoch in range(box.num_epochs):
        box.pre_epoch_process(epoch=epoch)
        if on_epoch_start is not None:
            on_epoch_start(box, epoch)
        _train_one_epoch(box)
        if after_training is not None:
            after_training(box, epoch)
        val = validate(box, epoch, student) if validate is not None else \
            evaluate_like_text_script(student, box.val_data_loader, metric_dict, evaluate_config, device)[0]
        vals.append(val)
        if report_validation:
            leave_validation_on_box(box, epoch, val)
        if val > best:
            best = val
            student.save_pretrained(dst_ckpt)
            saved.append(epoch)
        box.post_epoch_process()
    tokenizer.save_pretrained(dst_ckpt)
    test_config = config['test']['test_data_loader']
    test_loader = build_data_loader(dataset_dict[test_config['dataset_id']], test_config, False)
    teacher_test = None if teacher is None else \
        evaluate_like_text_script(teacher.to(device), test_loader, metric_dict, evaluate_config, device)[1]
    student = load_tokenizer_and_model(student_config, True)[1].to(device)
    test = evaluate_like_text_script(student, test_loader, metric_dict, evaluate_config, device)[1]
    return {'student': student, 'teacher': teacher, 'box': box, 'dataset_dict': dataset_dict, 'val': vals,
            'saved': saved, 'test': test, 'teacher_test': teacher_test}
