"""A test driver that calls torchdistill's public API in the order its image-classification example does.

torchdistill's ``examples/torchvision/image_classification.py`` (checked against the repository at commit
3e4373c45214c5c56eebac481d5bfe8b8735aa05; torchdistill 1.1.5 installed) is not part of the pip package and is
not copied here. What matters for our plugins is the order of its calls, which this driver follows:

1. ``set_seed(--seed)``; teacher and student from torchdistill's model registry, each ``src_ckpt`` through
   torchdistill's ``load_ckpt`` (which only logs a missing file); ``models.student_model.dst_ckpt`` read (a KeyError
   without it);
2. the (multi-stage) distillation box, or the training box without a teacher; ``train.log_freq`` read;
3. ``best = 0.0``; every epoch: ``pre_epoch_process(epoch=...)``, the training loop (``forward_process``,
   ``post_forward_process``, a ValueError on a NaN loss), top-1 accuracy of the student on ``box.val_data_loader``
   (the student left in eval mode, as the script leaves it), ``save_ckpt`` to ``dst_ckpt`` when it beats ``best``
   (one best over all stages), then ``post_epoch_process()`` (in which a multi-stage box may advance to its next
   stage);
4. ``clean_modules()``, the student reloaded from ``dst_ckpt`` with ``load_ckpt``, top-1 on the test loader.

The script never leaves its validation result on the box; ``report_validation=True`` makes this driver do so,
as our runner does, so that the tests cover both kinds of driver.
"""
import torch
from torchdistill.common.main_util import load_ckpt, save_ckpt, set_seed
from torchdistill.common.module_util import check_if_wrapped
from torchdistill.core.distillation import get_distillation_box
from torchdistill.core.training import get_training_box
from torchdistill.datasets.util import build_data_loader
from torchdistill.models.registry import get_model

from plugins.evaluation import model_logits, to_device
from plugins.stages import report_validation as leave_validation_on_box

__all__ = ['run_like_image_script', 'top1_accuracy']


def _load_model(model_config, device):
    model = get_model(model_config['key'], model_config.get('repo_or_dir'), **(model_config.get('kwargs') or {}))
    load_ckpt(model_config.get('src_ckpt'), model=model, strict=True)
    return model.to(device)


@torch.inference_mode()
def top1_accuracy(model, data_loader, device):
    """Top-1 accuracy in percent; the model is left in eval mode, as the script's evaluate leaves it."""
    model.eval()
    correct = total = 0
    for batch in data_loader:
        samples, targets = to_device(batch[0], device), to_device(batch[1], device)
        correct += (model_logits(model(samples)).argmax(dim=1) == targets).sum().item()
        total += len(targets)
    return 100.0 * correct / total


def _train_one_epoch(box, device):
    for sample_batch, targets, supp_dict in box.train_data_loader:
        sample_batch, targets = to_device(sample_batch, device), to_device(targets, device)
        loss = box.forward_process(sample_batch, targets, supp_dict)
        box.post_forward_process(loss=loss)
        if not torch.isfinite(loss):  # the script stops on a NaN / infinite loss after the step, as here
            raise ValueError(f'The training loop was broken due to loss = {loss}')


def run_like_image_script(config, device='cpu', validate=None, on_box=None, on_epoch_start=None,
                          report_validation=False, seed=0):
    """Trains ``config`` (a loaded YAML dict) in the image script's call order; returns what the tests inspect.

    ``validate(box, epoch, student)`` replaces the top-1 validation (scripted values); ``on_box(box)`` sees the
    box once built; ``on_epoch_start(box, epoch)`` runs after the pre-epoch process. Returns a dict with the
    ``student`` (reloaded from ``dst_ckpt``), ``teacher``, ``box``, per-epoch ``val`` values, the epochs at which
    ``dst_ckpt`` was saved (``saved``) and the test top-1 accuracy (``test``).
    """
    set_seed(seed)  # the script's --seed
    device = torch.device(device)
    models = config['models']
    teacher = _load_model(models['teacher_model'], device) if 'teacher_model' in models else None
    student_config = models['student_model'] if 'student_model' in models else models['model']
    dst_ckpt = student_config['dst_ckpt']
    student = _load_model(student_config, device)
    train_config = config['train']
    box = get_training_box(student, config['datasets'], train_config, device, None, False, 1) if teacher is None \
        else get_distillation_box(teacher, student, config['datasets'], train_config, device, None, False, 1)
    _ = train_config['log_freq']  # the script reads it: a config without it stops with a KeyError
    if on_box is not None:
        on_box(box)
    wrapped_student = box.model if teacher is None else box.student_model
    best, vals, saved = 0.0, [], []
    for epoch in range(box.num_epochs):
        box.pre_epoch_process(epoch=epoch)
        if on_epoch_start is not None:
            on_epoch_start(box, epoch)
        _train_one_epoch(box, device)
        val = validate(box, epoch, wrapped_student) if validate is not None else \
            top1_accuracy(wrapped_student, box.val_data_loader, device)
        vals.append(val)
        if report_validation:
            leave_validation_on_box(box, epoch, val)
        if val > best:
            best = val
            save_ckpt(wrapped_student, box.optimizer, box.lr_scheduler, best, None, dst_ckpt)
            saved.append(epoch)
        box.post_epoch_process()
    box.clean_modules()
    load_ckpt(dst_ckpt, model=student.module if check_if_wrapped(student) else student, strict=True)
    test_config = config['test']['test_data_loader']
    test_loader = build_data_loader(config['datasets'][test_config['dataset_id']], test_config, False)
    return {'student': student, 'teacher': teacher, 'box': box, 'val': vals, 'saved': saved,
            'test': top1_accuracy(student, test_loader, device)}
