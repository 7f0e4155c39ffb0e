"""Samples of the Continuation-KD paper's noise toy (Section 6, Figure 2): points of a noisy sinusoid teacher.

The teacher is t(x) = a_s sin(2 pi f_s x) + a_n sin(2 pi f_n x) (:func:`plugins.models.analytic.noisy_sinusoid_teacher`,
given by the same ``function`` mapping). As in the paper ("we sample 3,000 points from the graph of the noisy
sinusoidal function"), a training or validation sample is (x, t(x)) with x uniform on [-1, 1]: the label IS the
teacher's value, so no method gets information the teacher does not give. The test inputs are a uniform grid on
[-1, 1]; with ``target='clean'`` their label is the signal a_s sin(2 pi f_s x) alone (the student's error to the
function the teacher approximates), with ``target='teacher'`` the teacher. Labels are computed by the teacher
module itself, so they equal its outputs exactly. Inputs are fixed by ``split_seed``, not by the training seed.
"""
import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..config_util import check_choice, check_integer
from ..models.analytic import SinusoidSum, noisy_sinusoid_teacher, sinusoid_component

__all__ = ['noisy_sinusoid_split', 'NOISY_SINUSOID_SPLITS', 'NOISY_SINUSOID_TARGETS', 'target_function']

NOISY_SINUSOID_SPLITS = ('train', 'val', 'test')
NOISY_SINUSOID_TARGETS = ('teacher', 'clean')
DOMAIN = (-1.0, 1.0)


def target_function(function: dict, target: str) -> SinusoidSum:
    """The labelling function: the noisy teacher (``'teacher'``) or its signal alone (``'clean'``)."""
    check_choice(target, 'target', NOISY_SINUSOID_TARGETS)
    if not isinstance(function, dict) or set(function) != {'signal', 'noise'}:
        raise ValueError(f"function must be a mapping with exactly the fields ['noise', 'signal'], got {function!r}")
    if target == 'teacher':
        return noisy_sinusoid_teacher(**function)
    return SinusoidSum([sinusoid_component(function['signal'], 'function.signal')])


def noisy_sinusoid_split(split: str, function: dict, target: str = 'teacher', num_train: int = 3000,
                         num_val: int = 1000, num_test: int = 1000, split_seed: int = 0) -> TensorDataset:
    """A ``TensorDataset`` of (x, label), each of shape (1,): ``split`` picks the inputs, ``target`` the labels.

    .. code-block:: yaml

        datasets:
          noisy_sinusoid/train: !import_call
            key: 'plugins.datasets.noisy_sinusoid.noisy_sinusoid_split'
            init: {kwargs: {split: 'train', function: *toy_function, target: 'teacher'}}
    """
    check_choice(split, 'split', NOISY_SINUSOID_SPLITS)
    labeller = target_function(function, target)
    sizes = {'train': check_integer(num_train, 'num_train', 2), 'val': check_integer(num_val, 'num_val', 2),
             'test': check_integer(num_test, 'num_test', 2)}
    if split == 'test':
        x = np.linspace(*DOMAIN, sizes['test'])
    else:
        # One stream per split: the training inputs do not change when num_val does, and vice versa.
        x = np.random.default_rng([split_seed, NOISY_SINUSOID_SPLITS.index(split)]).uniform(*DOMAIN, sizes[split])
    inputs = torch.tensor(x, dtype=torch.float32).unsqueeze(1)
    with torch.no_grad():
        labels = labeller(inputs)
    return TensorDataset(inputs, labels)
