"""The noise toy's analytic teacher (plugins.models.analytic) and its samples (plugins.datasets.noisy_sinusoid)."""
import math

import numpy as np
import pytest
import torch

from plugins.datasets.noisy_sinusoid import noisy_sinusoid_split
from plugins.models.analytic import SinusoidSum, noisy_sinusoid_teacher

FUNCTION = {'signal': {'amplitude': 1.0, 'frequency': 0.5}, 'noise': {'amplitude': 0.3, 'frequency': 2.5}}


def test_teacher_is_the_sum_of_its_two_sinusoids_on_hand_computed_points():
    teacher = noisy_sinusoid_teacher(**FUNCTION)
    x = torch.tensor([[0.0], [0.5], [-0.5], [0.1], [1.0]])
    # t(x) = sin(pi x) + 0.3 sin(5 pi x): t(0.5) = 1 + 0.3 sin(2.5 pi) = 1.3; t(0.1) = sin(0.1 pi) + 0.3 sin(0.5 pi)
    expected = [0.0, 1.3, -1.3, math.sin(0.1 * math.pi) + 0.3, 0.0]
    assert teacher(x).squeeze(1).tolist() == pytest.approx(expected, abs=1e-6)
    assert teacher(x).shape == (5, 1)


def test_teacher_has_nothing_to_train_or_checkpoint_and_is_registered():
    from torchdistill.models.registry import get_model
    teacher = get_model('noisy_sinusoid_teacher', None, **FUNCTION)
    assert isinstance(teacher, SinusoidSum)
    assert list(teacher.parameters()) == [] and teacher.state_dict() == {}
    assert teacher.to(torch.float64).amplitudes.dtype == torch.float64  # buffers follow the module
    assert 'sin(2 pi 2.5 x)' in repr(teacher)


@pytest.mark.parametrize('kwargs, message', [
    ({'signal': {'amplitude': 1.0}, 'noise': FUNCTION['noise']}, r"signal must be a mapping with exactly the fields"),
    ({'signal': FUNCTION['signal'], 'noise': {'amplitude': '0.3', 'frequency': 2.5}}, r'noise\.amplitude must be'),
    ({'signal': FUNCTION['signal'], 'noise': {'amplitude': 0.3, 'frequency': -1}}, r'noise\.frequency must be >= 0'),
    ({'signal': FUNCTION['signal'], 'noise': {'amplitude': math.nan, 'frequency': 2.5}}, r'noise\.amplitude'),
])
def test_bad_teacher_kwargs_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        noisy_sinusoid_teacher(**kwargs)


def test_teacher_rejects_inputs_that_are_not_one_column():
    with pytest.raises(ValueError, match=r'shape \(N, 1\)'):
        noisy_sinusoid_teacher(**FUNCTION)(torch.zeros(4, 2))


def test_training_samples_are_points_of_the_teacher_graph():
    train = noisy_sinusoid_split('train', FUNCTION)
    inputs, labels = train.tensors
    assert inputs.shape == labels.shape == (3000, 1)
    assert inputs.min() >= -1.0 and inputs.max() <= 1.0
    with torch.no_grad():
        assert torch.equal(labels, noisy_sinusoid_teacher(**FUNCTION)(inputs))  # the label IS the teacher's value
    # the same inputs whatever the torch seed: fixed by split_seed only
    torch.manual_seed(123)
    assert torch.equal(noisy_sinusoid_split('train', FUNCTION).tensors[0], inputs)
    assert not torch.equal(noisy_sinusoid_split('train', FUNCTION, split_seed=1).tensors[0], inputs)
    val_inputs = noisy_sinusoid_split('val', FUNCTION).tensors[0]
    assert val_inputs.shape == (1000, 1) and not torch.equal(val_inputs[:10], inputs[:10])


def test_clean_target_is_the_signal_alone_at_the_same_inputs():
    teacher_grid = noisy_sinusoid_split('test', FUNCTION, target='teacher')
    clean_grid = noisy_sinusoid_split('test', FUNCTION, target='clean')
    x = clean_grid.tensors[0].squeeze(1)
    assert torch.equal(x, teacher_grid.tensors[0].squeeze(1))
    assert x.tolist() == pytest.approx(np.linspace(-1, 1, 1000).tolist(), abs=1e-7)
    assert clean_grid.tensors[1].squeeze(1).tolist() == pytest.approx(torch.sin(math.pi * x).tolist(), abs=1e-6)
    noise = teacher_grid.tensors[1] - clean_grid.tensors[1]
    assert noise.squeeze(1).tolist() == pytest.approx((0.3 * torch.sin(5 * math.pi * x)).tolist(), abs=1e-6)
    # the teacher's own error to the clean signal is the noise power, 0.3^2 / 2 = 0.045 (up to the grid's ends)
    assert torch.mean(noise ** 2).item() == pytest.approx(0.045, rel=2e-3)


@pytest.mark.parametrize('kwargs, message', [
    ({'split': 'dev'}, r"split must be one of \['train', 'val', 'test'\], got 'dev'"),
    ({'split': 'train', 'target': 'label'}, r"target must be one of \['teacher', 'clean'\], got 'label'"),
    ({'split': 'train', 'num_train': 1}, r'num_train must be an integer >= 2'),
    ({'split': 'train', 'function': {'signal': FUNCTION['signal']}}, r"function must be a mapping with exactly"),
])
def test_bad_split_arguments_name_the_field(kwargs, message):
    kwargs = dict(kwargs)
    function = kwargs.pop('function', FUNCTION)
    with pytest.raises(ValueError, match=message):
        noisy_sinusoid_split(function=function, **kwargs)
