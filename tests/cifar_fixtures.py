"""Tiny CIFAR-10 / CIFAR-100 files in the real pickled layout that torchvision reads (no download).

CIFAR-10: ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` (dicts with ``data``: uint8 (N, 3072) rows of
1024 red, 1024 green, 1024 blue values, ``labels``, ``filenames``, ``batch_label``) and ``batches.meta``
(``label_names``). CIFAR-100: ``cifar-100-python/train``, ``test`` (``fine_labels``, ``coarse_labels``) and
``meta`` (``fine_label_names``, ``coarse_label_names``). The MD5 sums cannot match the official files, so
readers set ``KD_VERIFY_MD5=0`` (see ``plugins/datasets/cifar.py``).
"""
import os
import pickle

import numpy as np

__all__ = ['write_tiny_cifar10', 'write_tiny_cifar100', 'tiny_cifar_env']


def _images(rng, labels):
    return rng.integers(0, 256, size=(len(labels), 3 * 32 * 32), dtype=np.uint8)


def _dump(path, obj):
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=2)


def write_tiny_cifar10(root, train_per_class=2, test_per_class=1, seed=0):
    """Writes tiny CIFAR-10 under ``root``; returns ``{'train': (data, labels), 'test': (data, labels)}``
    with data the uint8 (N, 3072) rows in file order (data_batch_1 first)."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, 'cifar-10-batches-py')
    os.makedirs(folder, exist_ok=True)
    train_labels = rng.permutation(np.repeat(np.arange(10), train_per_class)).tolist()
    train_data = _images(rng, train_labels)
    # Spread the training images over the five batches as the real files do.
    bounds = np.linspace(0, len(train_labels), 6).astype(int)
    for number in range(5):
        part = slice(bounds[number], bounds[number + 1])
        _dump(os.path.join(folder, f'data_batch_{number + 1}'), {
            'batch_label': f'training batch {number + 1} of 5', 'labels': train_labels[part],
            'data': train_data[part], 'filenames': [f'train_{i}.png' for i in range(part.start, part.stop)]})
    test_labels = rng.permutation(np.repeat(np.arange(10), test_per_class)).tolist()
    test_data = _images(rng, test_labels)
    _dump(os.path.join(folder, 'test_batch'), {'batch_label': 'testing batch 1 of 1', 'labels': test_labels,
                                               'data': test_data,
                                               'filenames': [f'test_{i}.png' for i in range(len(test_labels))]})
    _dump(os.path.join(folder, 'batches.meta'), {
        'num_cases_per_batch': int(bounds[1]), 'num_vis': 3072,
        'label_names': ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']})
    return {'train': (train_data, train_labels), 'test': (test_data, test_labels)}


def write_tiny_cifar100(root, train_per_class=1, test_per_class=1, seed=0, max_images=None):
    """Writes tiny CIFAR-100 under ``root`` (at most ``max_images`` per file, so some classes may be absent);
    returns ``{'train': (data, labels), 'test': (data, labels)}``."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, 'cifar-100-python')
    os.makedirs(folder, exist_ok=True)
    written = {}
    for split, per_class in (('train', train_per_class), ('test', test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(100), per_class))[:max_images].tolist()
        data = _images(rng, labels)
        _dump(os.path.join(folder, split), {
            'filenames': [f'{split}_{i}.png' for i in range(len(labels))], 'batch_label': f'{split} batch',
            'fine_labels': labels, 'coarse_labels': [label // 5 for label in labels], 'data': data})
        written[split] = (data, labels)
    _dump(os.path.join(folder, 'meta'), {'fine_label_names': [f'class_{i}' for i in range(100)],
                                         'coarse_label_names': [f'superclass_{i}' for i in range(20)]})
    return written


def tiny_cifar_env(monkeypatch, root):
    """Points ``plugins.datasets.cifar`` at ``root`` (files that fail the MD5 check), never downloading."""
    monkeypatch.setenv('KD_DATA_ROOT', str(root))
    monkeypatch.setenv('KD_VERIFY_MD5', '0')
    monkeypatch.setenv('KD_DOWNLOAD', '0')
