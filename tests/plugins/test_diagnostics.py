"""Dead ReLU units and training-loss growth, on hand-built models and histories."""
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from plugins.diagnostics import dead_relu_units, loss_growth, training_diagnostics


def _two_unit_mlp(bias):
    """2 inputs -> 2 ReLU units (unit i reads input i) -> 3 classes, with the given unit biases."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.copy_(torch.tensor(bias))
    return model


def test_a_unit_whose_input_is_never_positive_is_dead():
    inputs = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    # unit 0: x0 - 4 <= -1 on every sample (dead); unit 1: x1 + 0 is 2 on the first sample (alive)
    result = dead_relu_units(_two_unit_mlp([-4.0, 0.0]), [inputs])
    assert result == {'dead_units': 1, 'relu_units': 2, 'per_layer': {'1': 1}}
    # exactly zero on every sample is dead too (the gradient is zero); one positive sample keeps a unit alive
    assert dead_relu_units(_two_unit_mlp([-3.0, -2.0]), [inputs])['dead_units'] == 2
    assert dead_relu_units(_two_unit_mlp([-2.9, -2.0]), [inputs])['dead_units'] == 1


def test_batches_are_pooled_and_the_model_mode_is_restored():
    model = _two_unit_mlp([-2.5, -2.5]).train()
    # unit 0 fires only on the second batch, unit 1 never
    batches = [torch.tensor([[1.0, 1.0]]), (torch.tensor([[3.0, 0.0]]), torch.tensor([1]))]
    assert dead_relu_units(model, batches)['dead_units'] == 1 and model.training


def test_convolution_channels_are_units_and_models_without_relu_give_none():
    conv = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU())
    with torch.no_grad():
        conv[0].weight.fill_(1.0)
        conv[0].bias.copy_(torch.tensor([0.0, -10.0]))
    images = torch.zeros(2, 1, 3, 3)
    images[1, 0, 2, 2] = 1.0  # one positive position keeps channel 0 alive
    assert dead_relu_units(conv, [images]) == {'dead_units': 1, 'relu_units': 2, 'per_layer': {'1': 1}}
    assert dead_relu_units(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), [torch.ones(1, 2)]) is None


def _history(losses, stages=None):
    stages = stages or [1] * len(losses)
    return [{'epoch': epoch, 'stage': stage, 'train_loss': loss} for epoch, (loss, stage) in
            enumerate(zip(losses, stages))]


def test_growth_is_against_the_lowest_earlier_loss_of_the_same_stage():
    result = loss_growth(_history([2.0, 0.5, 0.01, 5.0, 12.0]))
    assert result == {'max_growth': pytest.approx(1200.0), 'epoch': 4, 'flagged': True}
    # exactly 1000-fold is flagged, just below is not
    assert loss_growth(_history([0.002, 2.0]))['flagged']
    assert not loss_growth(_history([0.002, 1.998]))['flagged']
    # a stage switch starts afresh: Stage II's cross-entropy is not compared with Stage I's small MSE
    switched = loss_growth(_history([0.001, 0.001, 2.0, 1.5], stages=[1, 1, 2, 2]))
    assert switched == {'max_growth': 1.0, 'epoch': None, 'flagged': False}


def test_a_non_finite_loss_is_infinite_growth_and_zero_losses_are_no_denominator():
    result = loss_growth(_history([1.0, math.nan]))
    assert result['max_growth'] == math.inf and result['flagged'] and result['epoch'] == 1
    assert loss_growth(_history([0.0, 0.0, 3.0])) == {'max_growth': 1.0, 'epoch': None, 'flagged': False}


def test_training_diagnostics_reads_the_loaders_dataset_in_order_and_writes_json_safe_growth():
    data = TensorDataset(torch.tensor([[1.0, 2.0], [3.0, -1.0]]), torch.tensor([0, 1]))
    loader = DataLoader(data, batch_size=1, shuffle=True)
    result = training_diagnostics(_two_unit_mlp([-4.0, 0.0]), loader, 'cpu', _history([1.0, math.inf]))
    assert result['dead_relu']['dead_units'] == 1
    assert result['loss_growth'] == {'max_growth': None, 'epoch': 1, 'flagged': True}
