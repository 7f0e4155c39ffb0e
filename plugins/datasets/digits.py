"""scikit-learn's digits images (1,797 real 8x8 handwritten digits shipped with the package), split once.

The split is stratified and fixed by ``split_seed`` (not by the training seed), so every method and seed
sees the same train / validation / test samples: validation for model selection, test for final figures.
"""
import torch
from torch.utils.data import TensorDataset

__all__ = ['digits_split', 'DIGITS_SPLITS']

DIGITS_SPLITS = ('train', 'val', 'test')


def digits_split(split, val_fraction=0.2, test_fraction=0.2, split_seed=0):
    """A ``TensorDataset`` of (64 pixel values in [0, 1], label) for ``split`` in train / val / test.

    .. code-block:: yaml

        datasets:
          digits/train: !import_call
            key: 'plugins.datasets.digits.digits_split'
            init: {kwargs: {split: 'train'}}
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in DIGITS_SPLITS:
        raise ValueError(f'split must be one of {list(DIGITS_SPLITS)}, got {split!r}')
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError('val_fraction and test_fraction must lie in (0, 1) and sum to less than 1, '
                         f'got {val_fraction!r} and {test_fraction!r}')
    images, labels = load_digits(return_X_y=True)
    indices = list(range(len(labels)))
    rest, test = train_test_split(indices, test_size=test_fraction, stratify=labels, random_state=split_seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  stratify=labels[rest], random_state=split_seed)
    chosen = {'train': train, 'val': val, 'test': test}[split]
    return TensorDataset(torch.tensor(images[chosen] / 16.0, dtype=torch.float32),
                         torch.tensor(labels[chosen], dtype=torch.long))
