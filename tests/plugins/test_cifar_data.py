import os
import sys
from collections import Counter

import numpy as np
import pytest
import torch

from plugins.datasets.cifar import CIFAR_STATS, cifar_data_root, cifar_split, stratified_split

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for cifar_fixtures
from cifar_fixtures import tiny_cifar_env, write_tiny_cifar10, write_tiny_cifar100  # noqa: E402

WRITERS = {'cifar10': write_tiny_cifar10, 'cifar100': write_tiny_cifar100}


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('cifar')
    written = {'cifar10': write_tiny_cifar10(root, train_per_class=10, test_per_class=2),
               'cifar100': write_tiny_cifar100(root, train_per_class=2, test_per_class=1)}
    return root, written


@pytest.fixture
def env(monkeypatch, tiny_root):
    tiny_cifar_env(monkeypatch, tiny_root[0])
    return tiny_root


def unnormalize(image, dataset):
    """uint8 pixels in CIFAR's (3, 32, 32) row layout back from a normalized tensor."""
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in CIFAR_STATS[dataset])
    return (image * std + mean) * 255


@pytest.mark.parametrize('dataset', ['cifar10', 'cifar100'])
def test_test_split_round_trips_pixels_and_labels(env, dataset):
    data, labels = env[1][dataset]['test']
    test = cifar_split(dataset, 'test')
    assert len(test) == len(labels)
    for index in (0, len(labels) - 1):
        image, label = test[index]
        assert label == labels[index]
        expected = torch.tensor(data[index], dtype=torch.float32).view(3, 32, 32)
        torch.testing.assert_close(unnormalize(image, dataset), expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize('dataset', ['cifar10', 'cifar100'])
def test_train_and_val_are_disjoint_stratified_and_fixed(env, dataset):
    data, labels = env[1][dataset]['train']
    train, val = cifar_split(dataset, 'train'), cifar_split(dataset, 'val')
    assert not set(train.indices) & set(val.indices)
    assert sorted(train.indices + val.indices) == list(range(len(labels)))
    assert len(val) == round(0.1 * len(labels))
    # CIFAR-10 here: 10 images per class, so 10% is exactly one image of every class.
    val_counts = Counter(labels[i] for i in val.indices)
    if dataset == 'cifar10':
        assert val_counts == Counter({label: 1 for label in range(10)})
    else:  # 20 validation images from 100 classes: no class twice
        assert max(val_counts.values()) == 1
    assert cifar_split(dataset, 'val').indices == val.indices
    assert cifar_split(dataset, 'val', split_seed=1).indices != val.indices
    # The validation images are the training files' images, unaugmented, with their labels.
    image, label = val[0]
    assert label == labels[val.indices[0]]
    torch.testing.assert_close(unnormalize(image, dataset),
                               torch.tensor(data[val.indices[0]], dtype=torch.float32).view(3, 32, 32),
                               atol=1e-3, rtol=0)


def test_augmentation_on_train_only(env):
    train, val, test = (cifar_split('cifar10', split) for split in ('train', 'val', 'test'))
    names = {split: [type(t).__name__ for t in data.dataset.transform.transforms] if split != 'test'
             else [type(t).__name__ for t in data.transform.transforms]
             for split, data in (('train', train), ('val', val), ('test', test))}
    assert names['train'] == ['RandomCrop', 'RandomHorizontalFlip', 'ToTensor', 'Normalize']
    assert names['val'] == names['test'] == ['ToTensor', 'Normalize']
    assert train.dataset.transform.transforms[0].padding == 4
    # Drawing the same training image repeatedly gives different crops / flips; validation never changes.
    torch.manual_seed(0)
    draws = [train[0][0] for _ in range(8)]
    assert any(not torch.equal(draws[0], draw) for draw in draws[1:])
    assert torch.equal(val[0][0], val[0][0])


def test_stratified_split_takes_the_same_share_of_every_class():
    labels = np.repeat(np.arange(4), [40, 40, 20, 100])
    train, val = stratified_split(labels, 0.25, split_seed=3)
    assert Counter(labels[val].tolist()) == {0: 10, 1: 10, 2: 5, 3: 25}
    assert len(train) + len(val) == 200 and not set(train) & set(val)
    assert stratified_split(labels, 50, split_seed=3) == (train, val)  # an int count is the same split


@pytest.mark.parametrize('kwargs, message', [
    ({'dataset': 'cifar1000'}, "dataset must be one of ['cifar10', 'cifar100']"),
    ({'split': 'validation'}, "split must be one of ['train', 'val', 'test']"),
    ({'val_size': 0}, 'val_size must be an integer in [1, 99]'),
    ({'val_size': 1.5}, 'val_size must be an integer in [1, 99]'),
    ({'download': 'yes'}, 'download must be true, false or null'),
])
def test_bad_arguments_name_the_field(env, kwargs, message):
    with pytest.raises(ValueError) as error:
        cifar_split(**{'dataset': 'cifar10', 'split': 'train', **kwargs})
    assert message in str(error.value)


def test_missing_data_says_where_it_looked_and_how_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv('KD_DATA_ROOT', str(tmp_path / 'nowhere'))
    monkeypatch.delenv('KD_DOWNLOAD', raising=False)
    with pytest.raises(FileNotFoundError) as error:
        cifar_split('cifar100', 'test')
    text = str(error.value)
    assert os.path.join(str(tmp_path / 'nowhere'), 'cifar-100-python') in text
    assert 'download=True' in text and 'KD_DOWNLOAD=1' in text and 'train' in text


def test_md5_check_is_on_by_default_and_names_the_way_out(env, monkeypatch):
    monkeypatch.delenv('KD_VERIFY_MD5')
    with pytest.raises(RuntimeError) as error:
        cifar_split('cifar10', 'test')
    assert 'MD5' in str(error.value) and 'KD_VERIFY_MD5=0' in str(error.value)
    assert len(cifar_split('cifar10', 'test', verify_md5=False)) == 20


def test_data_root_precedence(monkeypatch):
    # The variable overrides a config's root (issue 11: root in the config, environment variables may override).
    monkeypatch.setenv('KD_DATA_ROOT', '/data/env')
    assert cifar_data_root('/data/arg') == '/data/env'
    assert cifar_data_root() == '/data/env'
    monkeypatch.setenv('KD_DATA_ROOT', '')
    assert cifar_data_root('/data/arg') == '/data/arg'
    monkeypatch.delenv('KD_DATA_ROOT')
    assert cifar_data_root('~/data/arg') == os.path.expanduser('~/data/arg')
    assert cifar_data_root() == os.path.expanduser('~/datasets')


def test_downloads_only_when_asked(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as torchvision_cifar
    calls = []

    def fake_download(url, download_root, filename=None, md5=None, **kwargs):
        calls.append((url, md5))
        write_tiny_cifar10(download_root)

    monkeypatch.setattr(torchvision_cifar, 'download_and_extract_archive', fake_download)
    tiny_cifar_env(monkeypatch, tmp_path)
    with pytest.raises(FileNotFoundError):
        cifar_split('cifar10', 'test')
    assert calls == []
    monkeypatch.setenv('KD_DOWNLOAD', '1')
    assert len(cifar_split('cifar10', 'test')) == 10
    assert len(cifar_split('cifar10', 'val')) == 2  # the files are there now: no second download
    assert calls == [(torchvision_cifar.CIFAR10.url, torchvision_cifar.CIFAR10.tgz_md5)]
