"""Evaluation metrics and the evaluation loop used by the runner."""
from collections.abc import Mapping

import torch
import torchdistill.core.interfaces.forward_proc  # noqa: F401  (registers the forward functions)
from torchdistill.core.interfaces.registry import get_forward_proc_func

from .distributed import gather_in_dataset_order, unpadded_shard
from .errors import ConfigError

__all__ = ['Metric', 'METRICS', 'register_metric', 'get_metric', 'evaluate', 'model_logits', 'to_device',
           'training_batch', 'evaluation_batch']


class Metric:
    """A metric over a whole split: ``compute(outputs, targets) -> dict``; ``primary`` selects checkpoints."""

    def __init__(self, name, compute, primary, higher_is_better=True):
        self.name, self.compute, self.primary, self.higher_is_better = name, compute, primary, higher_is_better

    def is_better(self, value, best):
        return best is None or (value > best if self.higher_is_better else value < best)


METRICS = {}


def register_metric(name, primary, higher_is_better=True):
    """Decorator: registers ``compute(outputs, targets) -> dict`` as metric ``name``; refuses duplicates."""
    def decorate(compute):
        if name in METRICS:
            raise KeyError(f'metric {name!r} is already registered')
        METRICS[name] = Metric(name, compute, primary, higher_is_better)
        return compute
    return decorate


def get_metric(name):
    """The registered metric ``name``; :class:`~plugins.errors.ConfigError` lists the accepted names."""
    if not isinstance(name, str) or name not in METRICS:
        raise ConfigError(f'evaluation.metric must be one of {sorted(METRICS)}, got {name!r}')
    return METRICS[name]


@register_metric('accuracy', primary='accuracy')
def accuracy(outputs, targets):
    """Top-1 accuracy in percent."""
    return {'accuracy': 100.0 * (outputs.argmax(dim=1) == targets).float().mean().item()}


@register_metric('mse', primary='mse', higher_is_better=False)
def mean_squared_error(outputs, targets):
    """Mean squared error of a single-output regression."""
    return {'mse': torch.mean((outputs.reshape(-1).float() - targets.reshape(-1).float()) ** 2).item()}


def to_device(batch, device):
    """Moves a tensor, or the tensors inside a dict / list / tuple, to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):  # a dict, or a Hugging Face collator's BatchEncoding (a plain dict then)
        return (type(batch) if isinstance(batch, dict) else dict)(
            (key, to_device(value, device)) for key, value in batch.items())
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


def training_batch(batch):
    """``(sample_batch, targets, supp_dict)`` of a training batch as drivers pass it to ``forward_process``:
    torchdistill's triples, or a mapping of model inputs that holds its ``labels`` (a Hugging Face collator's
    batch), passed whole with ``targets`` None as torchdistill's text-classification script does."""
    return (batch, None, None) if isinstance(batch, Mapping) else batch


def evaluation_batch(batch):
    """``(model inputs, targets)`` of an evaluation batch: torchdistill's ``(sample, target, ...)``, or a mapping
    whose ``labels`` are split off (the text script evaluates ``model(**batch)`` without them)."""
    if isinstance(batch, Mapping):
        return {key: value for key, value in batch.items() if key != 'labels'}, batch['labels']
    return batch[0], batch[1]


def model_logits(output):
    """The logits of a model output: a tensor, a Hugging Face ``ModelOutput`` or a tuple led by the logits."""
    if hasattr(output, 'logits'):
        return output.logits
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


@torch.inference_mode()
def evaluate(model, data_loader, device, metric, forward_proc=None):
    """Runs ``model`` over ``data_loader`` and returns ``metric`` over the whole split.

    Under torch.distributed each rank evaluates an unpadded shard of the split (``DistributedSampler``
    would repeat samples to even the shards out) and the outputs are gathered back in dataset order, so
    every rank returns exactly the single-process figures.
    """
    forward = get_forward_proc_func(forward_proc or 'forward_batch_only')
    data_loader, shard_indices = unpadded_shard(data_loader)
    was_training = model.training
    model.eval()
    outputs, targets = [], []
    for batch in data_loader:
        sample_batch, target = evaluation_batch(batch)
        sample_batch, target = to_device(sample_batch, device), to_device(target, device)
        output = forward(model, sample_batch, target, None)  # a text batch's labels are in target, not the inputs
        outputs.append(model_logits(output).float().cpu())
        targets.append(target.cpu())
    model.train(was_training)
    if shard_indices is not None:
        all_outputs, all_targets = gather_in_dataset_order(shard_indices, outputs, targets)
    else:
        all_outputs, all_targets = torch.cat(outputs), torch.cat(targets)
    return metric.compute(all_outputs, all_targets)
