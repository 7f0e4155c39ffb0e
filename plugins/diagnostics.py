"""Training diagnostics written into every run's ``result.json``: dead ReLU units and training-loss blow-ups.

A ReLU unit is *dead* on a data set when its input is <= 0 for every sample: its output and its gradient are
zero, so it never learns again and the network has lost that unit. A small student (a few hidden units) that
loses one is a different, smaller model, which is what makes seed-to-seed spreads explode; a benchmark should
count such runs instead of averaging them silently. Units are the features of dimension 1 (a linear layer's
outputs, a convolution's channels, dead when zero at every position).

The training loss *grows by orders of magnitude* when, within one stage, an epoch's mean training loss exceeds
``threshold`` (default 1000: three orders of magnitude) times the lowest mean training loss of an earlier epoch
of that stage; a stage switch changes the objective, so each stage is measured on its own. The threshold is
that high because a scheduled objective may grow by design: Annealing-KD's Stage-I target Phi(T) z_t grows
tenfold over the stage (tau_max 10), so its squared error grows by up to Phi's ratio squared, 100 (at most 89
in the digits benchmark's runs).
"""
import math
from collections.abc import Mapping

import torch
from torch import nn

__all__ = ['relu_unit_maxima', 'dead_relu_units', 'loss_growth', 'training_diagnostics', 'GROWTH_THRESHOLD']

GROWTH_THRESHOLD = 1000.0


@torch.no_grad()
def relu_unit_maxima(model: nn.Module, batches, forward=None) -> list:
    """``[(module name, per-unit maximum output over every sample)]`` for each ``nn.ReLU`` of ``model``.

    ``batches`` yields model inputs (or tuples / lists whose first item is the input); ``forward(model, inputs)``
    runs the model (default ``model(inputs)``). The model is put in eval mode for the pass and restored.
    """
    relus = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.ReLU)]
    if not relus:
        return []
    maxima = {name: None for name, _ in relus}

    def hook_for(name):
        def record(module, inputs, output):
            per_unit = output.detach().transpose(0, 1).reshape(output.shape[1], -1).amax(dim=1) \
                if output.dim() > 1 else output.detach().reshape(1, -1).amax(dim=1)
            maxima[name] = per_unit if maxima[name] is None else torch.maximum(maxima[name], per_unit)
        return record

    handles = [module.register_forward_hook(hook_for(name)) for name, module in relus]
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            if forward is not None:
                forward(model, inputs)
            elif isinstance(inputs, Mapping):  # e.g. a tokenised batch
                model(**inputs)
            else:
                model(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return [(name, maxima[name].cpu()) for name, _ in relus if maxima[name] is not None]


def dead_relu_units(model: nn.Module, batches, forward=None):
    """``{'dead_units', 'relu_units', 'per_layer': {name: dead}}`` over ``batches``, or None without ReLUs."""
    maxima = relu_unit_maxima(model, batches, forward)
    if not maxima:
        return None
    per_layer = {name: int((values <= 0).sum()) for name, values in maxima}
    return {'dead_units': sum(per_layer.values()), 'relu_units': sum(len(values) for _, values in maxima),
            'per_layer': per_layer}


def loss_growth(history: list, threshold: float = GROWTH_THRESHOLD) -> dict:
    """``{'max_growth', 'epoch', 'flagged'}``: the largest ratio, within a stage, of an epoch's mean training loss
    to the lowest of the stage's earlier epochs, the epoch where it happened, and whether it reaches
    ``threshold``. A non-finite loss counts as infinite growth. Losses <= 0 (a hinge at zero) are skipped as
    denominators."""
    worst, worst_epoch, lowest, stage = 1.0, None, {}, None
    for entry in history:
        loss, stage = entry['train_loss'], entry.get('stage', 1)
        floor = lowest.get(stage)
        if floor is not None:
            growth = math.inf if not math.isfinite(loss) else loss / floor
            if growth > worst:
                worst, worst_epoch = growth, entry['epoch']
        if math.isfinite(loss) and loss > 0:
            lowest[stage] = loss if floor is None else min(floor, loss)
    return {'max_growth': worst, 'epoch': worst_epoch, 'flagged': worst >= threshold}


def training_diagnostics(model: nn.Module, train_data_loader, device, history: list, forward=None) -> dict:
    """Both diagnostics of a finished run: dead ReLU units of ``model`` over the dataset of ``train_data_loader``
    (read once, in order, with the loader's batch size and collate function) and the training-loss growth of
    ``history`` (the runner's per-epoch records)."""
    from torch.utils.data import DataLoader

    def batches():
        loader = DataLoader(train_data_loader.dataset, batch_size=train_data_loader.batch_size or 256,
                            shuffle=False, collate_fn=train_data_loader.collate_fn)
        for batch in loader:
            inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
            yield inputs.to(device) if isinstance(inputs, torch.Tensor) else inputs

    growth = loss_growth(history)
    if not math.isfinite(growth['max_growth']):
        growth['max_growth'] = None  # JSON has no infinity; 'flagged' says it all
    return {'dead_relu': dead_relu_units(model, batches(), forward), 'loss_growth': growth}
