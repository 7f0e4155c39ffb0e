"""The 1-D regression of the Annealing-KD paper's toy example (Section 3.1, Figure 2).

f(x) = sin(3 pi x) + sin(6 pi x) + sin(9 pi x) on [0, 1]. Training and validation points are drawn uniformly
with Gaussian label noise (the paper "randomly samples some points from this function"); the test split is a
noise-free grid, so a model's test MSE is its squared error to f itself. Every split is fixed by ``split_seed``
(not by the training seed). Inputs and targets have shape (1,), matching a one-output model under ``MSELoss``.
"""
import math

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..config_util import check_choice, check_integer, check_number

__all__ = ['sinusoid_function', 'sinusoid_split', 'SINUSOID_SPLITS']

SINUSOID_SPLITS = ('train', 'val', 'test')


def sinusoid_function(x):
    """f(x) = sin(3 pi x) + sin(6 pi x) + sin(9 pi x), for a NumPy array or a torch tensor."""
    sin = torch.sin if isinstance(x, torch.Tensor) else np.sin
    return sin(3 * math.pi * x) + sin(6 * math.pi * x) + sin(9 * math.pi * x)


def sinusoid_split(split, num_train=200, num_val=100, num_test=500, noise_std=0.1, split_seed=0):
    """A ``TensorDataset`` of (x, y), each of shape (1,), for ``split`` in train / val / test.

    .. code-block:: yaml

        datasets:
          sinusoid/train: !import_call
            key: 'plugins.datasets.sinusoid.sinusoid_split'
            init: {kwargs: {split: 'train'}}
    """
    check_choice(split, 'split', SINUSOID_SPLITS)
    for field, value in (('num_train', num_train), ('num_val', num_val), ('num_test', num_test)):
        check_integer(value, field, 2)
    check_number(noise_std, 'noise_std', 0)
    if split == 'test':
        x = np.linspace(0.0, 1.0, num_test)
        y = sinusoid_function(x)
    else:
        # One stream per split: the training set does not change when num_val does, and vice versa.
        rng = np.random.default_rng([split_seed, SINUSOID_SPLITS.index(split)])
        x = rng.uniform(0.0, 1.0, num_train if split == 'train' else num_val)
        y = sinusoid_function(x) + rng.normal(0.0, noise_std, x.shape)
    return TensorDataset(torch.tensor(x, dtype=torch.float32).unsqueeze(1),
                         torch.tensor(y, dtype=torch.float32).unsqueeze(1))
