"""scikit-learn's digits images (1,797 real 8x8 handwritten digits shipped with the package), split once.

The split is stratified and fixed by ``split_seed`` (not by the training seed), so every method and seed
sees the same train / validation / test samples (1,077 / 360 / 360): validation for model selection, test
for final figures. Inputs are standardised per pixel with the TRAINING split's mean and standard deviation
(floored at ``std_floor`` pixel levels, so the rarely-inked border pixels are not blown up), as a network's
inputs should be: on raw intensities in [0, 1], never centred, many ReLU students lose hidden units in their
first epoch (see the README's benchmark section).
"""
import functools

import numpy as np
import torch

from ..config_util import check_choice, check_number
from .in_memory import InMemoryTensorDataset

__all__ = ['digits_split', 'digits_arrays', 'DIGITS_SPLITS', 'NORMALIZATIONS', 'PIXEL_LEVELS']

DIGITS_SPLITS = ('train', 'val', 'test')
NORMALIZATIONS = ('standardize', 'unit')
PIXEL_LEVELS = 16.0  # the images' intensities are integers 0..16


@functools.lru_cache(maxsize=8)
def digits_arrays(val_fraction=0.2, test_fraction=0.2, split_seed=0):
    """``{split: (images as float64 (n, 64) in pixel levels 0..16, labels)}``, computed once per process."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    indices = np.arange(len(labels))
    rest, test = train_test_split(indices, test_size=test_fraction, stratify=labels, random_state=split_seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  stratify=labels[rest], random_state=split_seed)
    return {name: (images[chosen], labels[chosen]) for name, chosen in (('train', train), ('val', val),
                                                                        ('test', test))}


def _check(split, val_fraction, test_fraction, normalization, std_floor):
    check_choice(split, 'split', DIGITS_SPLITS)
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError('val_fraction and test_fraction must lie in (0, 1) and sum to less than 1, '
                         f'got {val_fraction!r} and {test_fraction!r}')
    check_choice(normalization, 'normalization', NORMALIZATIONS)
    check_number(std_floor, 'std_floor', 0, exclusive_minimum=True, note=' (pixel levels)')


def digits_split(split, val_fraction=0.2, test_fraction=0.2, split_seed=0, normalization='standardize',
                 std_floor=1.0):
    """An :class:`InMemoryTensorDataset` of (64 input values, label) for ``split`` in train / val / test.

    ``normalization``: ``standardize`` (default): (x - mean) / max(std, std_floor) per pixel, with the mean and
    std of the training split only (``std_floor`` in pixel levels, of 16); ``unit``: x / 16 in [0, 1], the
    raw intensities.

    .. code-block:: yaml

        datasets:
          digits/train: !import_call
            key: 'plugins.datasets.digits.digits_split'
            init: {kwargs: {split: 'train'}}
    """
    _check(split, val_fraction, test_fraction, normalization, std_floor)
    arrays = digits_arrays(val_fraction, test_fraction, split_seed)
    images, labels = arrays[split]
    if normalization == 'standardize':
        train_images = arrays['train'][0]
        inputs = (images - train_images.mean(axis=0)) / np.maximum(train_images.std(axis=0), std_floor)
    else:
        inputs = images / PIXEL_LEVELS
    return InMemoryTensorDataset(torch.tensor(inputs, dtype=torch.float32), torch.tensor(labels, dtype=torch.long))
