"""CIFAR-10 / CIFAR-100 through torchvision, split once into train / val / test.

``val`` is a fixed, stratified subset carved from the official training set and disjoint from ``train``; it is
chosen by ``split_seed`` (not by the training seed), so every method and seed selects checkpoints on the same
images. ``test`` is the official test set. Where the data lives and whether it may be downloaded:

- the environment variable ``KD_DATA_ROOT`` when it is set, else the ``root`` argument (a config's
  ``root: '~/datasets'``, so that torchdistill's own scripts find the data), else ``~/datasets``; the folder holds
  torchvision's ``cifar-10-batches-py/`` and ``cifar-100-python/``. The variable wins so that one config serves
  every machine, and the benchmark's ``--data-root`` (which sets it) reaches every config;
- downloading only when asked: ``download=True`` or ``KD_DOWNLOAD=1`` (torchvision checks the archive's MD5);
- ``KD_VERIFY_MD5=0`` (or ``verify_md5=False``) accepts batch files that fail torchvision's MD5 check; see
  :func:`cifar_split`.
"""
import os

import numpy as np
from filelock import FileLock  # a dependency of torch
from torch.utils.data import Subset
from torchdistill.common.constant import def_logger
from torchvision import transforms
from torchvision.datasets import CIFAR10, CIFAR100

from ..config_util import check_choice, check_integer, is_number

logger = def_logger.getChild(__name__)

__all__ = ['cifar_split', 'stratified_split', 'cifar_data_root', 'CIFAR_SPLITS', 'CIFAR_DATASETS', 'CIFAR_STATS']

CIFAR_SPLITS = ('train', 'val', 'test')
CIFAR_DATASETS = {'cifar10': CIFAR10, 'cifar100': CIFAR100}
# Per-channel mean and std of the official training images (the values of torchdistill's sample configs).
CIFAR_STATS = {
    'cifar10': ([0.49139968, 0.48215841, 0.44653091], [0.24703223, 0.24348513, 0.26158784]),
    'cifar100': ([0.5070754, 0.48655024, 0.44091907], [0.26733398, 0.25643876, 0.2761503]),
}
DEFAULT_ROOT = '~/datasets'


def _without_md5(cls):
    """``cls`` with torchvision's per-file MD5 sums set to None.

    torchvision's ``check_integrity(path, md5=None)`` then only checks that each file exists, and everything
    else (file names, pickle reading, label keys, the archive MD5 on download) stays torchvision's own code.
    """
    return type(cls.__name__, (cls,), {
        'train_list': [[name, None] for name, _ in cls.train_list],
        'test_list': [[name, None] for name, _ in cls.test_list],
        'meta': dict(cls.meta, md5=None),
    })


UNVERIFIED_CIFAR_DATASETS = {name: _without_md5(cls) for name, cls in CIFAR_DATASETS.items()}


def _env_flag(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == '':
        return default
    if value.strip().lower() in ('1', 'true', 'yes'):
        return True
    if value.strip().lower() in ('0', 'false', 'no'):
        return False
    raise ValueError(f"environment variable {name} must be 1 or 0 (true/false, yes/no), got {value!r}")


def cifar_data_root(root=None):
    """``$KD_DATA_ROOT`` when set (non-empty), else ``root``, else ``~/datasets`` (user-expanded)."""
    return os.path.expanduser(str(os.environ.get('KD_DATA_ROOT') or (root if root is not None else DEFAULT_ROOT)))


def stratified_split(targets, val_size, split_seed=0):
    """(train indices, val indices), both sorted: ``val_size`` samples (an int, or a fraction in (0, 1)) with every
    class in proportion, chosen by ``split_seed``.

    The samples are shuffled, each gets its rank within its class as a fraction of the class size, and the
    ``val_size`` smallest fractions form the validation set: the same share of every class for any size (unlike
    scikit-learn's stratified splitters, it also works with fewer validation samples than classes).
    """
    targets = np.asarray(targets)
    num_samples = len(targets)
    if not is_number(val_size):
        raise ValueError(f'val_size must be a number of samples or a fraction in (0, 1), got {val_size!r}')
    num_val = int(round(val_size * num_samples)) if isinstance(val_size, float) and 0 < val_size < 1 else val_size
    if not isinstance(num_val, int) or not 1 <= num_val < num_samples:
        raise ValueError(f'val_size must be an integer in [1, {num_samples - 1}] or a fraction in (0, 1) that leaves '
                         f'both splits non-empty for {num_samples} training samples, got {val_size!r}')
    order = np.random.default_rng(split_seed).permutation(num_samples)
    shuffled = targets[order]
    share = np.empty(num_samples)
    for label in np.unique(shuffled):
        positions = np.flatnonzero(shuffled == label)
        share[positions] = (np.arange(len(positions)) + 0.5) / len(positions)
    val = np.sort(order[np.argsort(share, kind='stable')[:num_val]])
    train = np.setdiff1d(np.arange(num_samples), val)
    return train.tolist(), val.tolist()


def _transform(dataset, augment):
    mean, std = CIFAR_STATS[dataset]
    augmentation = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] if augment else []
    return transforms.Compose(augmentation + [transforms.ToTensor(), transforms.Normalize(mean, std)])


def _load(dataset, root, train, transform, download, verify_md5):
    cls = CIFAR_DATASETS[dataset] if verify_md5 else UNVERIFIED_CIFAR_DATASETS[dataset]
    folder = os.path.join(root, cls.base_folder)
    files = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta['filename']]
    missing = [name for name in files if not os.path.isfile(os.path.join(folder, name))]
    if missing and not download:
        raise FileNotFoundError(
            f'{dataset}: no data set at {folder} (missing {", ".join(missing)}). Download it with download=True '
            f'or KD_DOWNLOAD=1 (into $KD_DATA_ROOT, else the root argument, else {DEFAULT_ROOT}), or point '
            f'KD_DATA_ROOT or the config\'s root at the folder that holds {cls.base_folder}/')
    try:
        if not download:
            return cls(root=root, train=train, transform=transform)
        # Under torchrun every rank builds the datasets: one downloads while the others wait, then finds the files.
        os.makedirs(root, exist_ok=True)
        with FileLock(os.path.join(root, f'.{cls.base_folder}.lock')):
            return cls(root=root, train=train, transform=transform, download=True)
    except RuntimeError as error:
        if not verify_md5:
            raise
        raise RuntimeError(f'{dataset}: the files in {folder} fail torchvision\'s MD5 check (corrupted, or not the '
                           f'official batches). Delete them and download again (KD_DOWNLOAD=1), or set '
                           f'KD_VERIFY_MD5=0 to read them anyway') from error


def cifar_split(dataset='cifar10', split='train', root=None, download=None, val_size=0.1, split_seed=0,
                verify_md5=None):
    """The ``split`` ('train', 'val' or 'test') of ``dataset`` ('cifar10' or 'cifar100').

    ``train`` has the standard augmentation (RandomCrop 32 with padding 4, RandomHorizontalFlip), then
    ToTensor and Normalize with the data set's mean and std; ``val`` and ``test`` only ToTensor and Normalize.
    ``val_size`` (default 0.1, i.e. 5,000 of the 50,000 training images) is carved from the official training
    set by :func:`stratified_split` with ``split_seed``; ``train`` is the rest.

    ``verify_md5`` (default: ``$KD_VERIFY_MD5``, else true) keeps torchvision's MD5 check of every batch file.
    Turning it off keeps torchvision's reading code and only skips that comparison (the MD5 sums are set to
    None in a subclass, see ``_without_md5``), because small files in the real pickled layout, as the tests
    write them, can never match the official sums.

    .. code-block:: yaml

        datasets:
          &cifar10_train cifar10/train: !import_call
            key: 'plugins.datasets.cifar.cifar_split'
            init: {kwargs: {dataset: 'cifar10', split: 'train', root: '~/datasets'}}  # $KD_DATA_ROOT overrides
    """
    check_choice(dataset, 'dataset', sorted(CIFAR_DATASETS))
    check_choice(split, 'split', CIFAR_SPLITS)
    for name, value in (('download', download), ('verify_md5', verify_md5)):
        if value is not None and not isinstance(value, bool):
            raise ValueError(f'{name} must be true, false or null (use the environment variable), got {value!r}')
    check_integer(split_seed, 'split_seed', None)
    root = cifar_data_root(root)
    download = _env_flag('KD_DOWNLOAD', False) if download is None else download
    verify_md5 = _env_flag('KD_VERIFY_MD5', True) if verify_md5 is None else verify_md5
    data = _load(dataset, root, split != 'test', _transform(dataset, augment=split == 'train'), download, verify_md5)
    if split == 'test':
        return data
    train, val = stratified_split(data.targets, val_size, split_seed)
    logger.info('%s/%s: %d images from %s', dataset, split, len(train if split == 'train' else val), root)
    return Subset(data, train if split == 'train' else val)
