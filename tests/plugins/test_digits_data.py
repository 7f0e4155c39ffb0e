"""The digits split: sizes, standardisation with the training split's statistics only, batch fetching."""
import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, RandomSampler, default_collate

from plugins.datasets.digits import digits_split
from plugins.datasets.in_memory import BaseDatasetWrapper, BatchFetchDatasetWrapper, TensorRows, collate_tensor_rows


def _raw(split):
    """The split's raw images (pixel levels 0..16), found by matching rows of the 'unit' split to the data set."""
    images = load_digits(return_X_y=True)[0]
    unit = digits_split(split, normalization='unit').tensors[0].double().numpy() * 16
    assert np.allclose(unit, np.round(unit)) and unit.min() >= 0 and unit.max() <= 16
    return unit, images


def test_split_sizes_are_fixed_disjoint_and_stratified():
    splits = {name: digits_split(name) for name in ('train', 'val', 'test')}
    assert {name: len(data) for name, data in splits.items()} == {'train': 1077, 'val': 360, 'test': 360}
    overall = np.bincount(load_digits(return_X_y=True)[1], minlength=10) / 1797
    for name, data in splits.items():  # each class in the proportion of the whole data set, to one image
        counts = torch.bincount(data.tensors[1], minlength=10).numpy()
        assert np.abs(counts - overall * len(data)).max() <= 1.5, name
    rows = {name: {tuple(row) for row in digits_split(name, normalization='unit').tensors[0].tolist()}
            for name in splits}
    # a handful of digits images are exact duplicates; the splits share no more than those
    assert len(rows['train'] & rows['test']) <= 3 and len(rows['val'] & rows['test']) <= 3


def test_standardisation_uses_training_statistics_only_and_floors_the_std():
    train_raw, _ = _raw('train')
    mean, std = train_raw.mean(axis=0), train_raw.std(axis=0)
    scale = np.maximum(std, 1.0)
    train = digits_split('train').tensors[0].double().numpy()
    assert np.allclose(train.mean(axis=0), 0.0, atol=1e-5)
    # a pixel whose std is at least one level ends with std 1; a rarer one keeps std / 1 (never blown up)
    assert np.allclose(train.std(axis=0), std / scale, atol=1e-5)
    assert (std < 1.0).sum() >= 10 and np.abs(train).max() < 20
    for split in ('val', 'test'):
        raw, _ = _raw(split)
        standardised = digits_split(split).tensors[0].double().numpy()
        assert np.allclose(standardised * scale + mean, raw, atol=1e-4)  # the training split's mean and scale
        assert not np.allclose(standardised.mean(axis=0), 0.0, atol=1e-3)


def test_unit_normalisation_is_the_raw_intensities_over_16():
    unit = digits_split('test', normalization='unit').tensors[0]
    assert unit.min().item() == 0.0 and unit.max().item() == 1.0


@pytest.mark.parametrize('kwargs, message', [
    ({'normalization': 'minmax'}, "normalization must be one of ['standardize', 'unit']"),
    ({'std_floor': 0}, 'std_floor must be a number > 0'),
    ({'split': 'dev'}, 'split must be one of'),
])
def test_bad_arguments_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message.replace('[', r'\[').replace(']', r'\]')):
        digits_split(**dict({'split': 'train'}, **kwargs))


def test_tensor_rows_read_as_samples_and_collate_to_the_same_batch():
    data = digits_split('val')
    rows = data.__getitems__([5, 0, 7])
    assert isinstance(rows, TensorRows) and len(rows) == 3
    assert torch.equal(rows[1][0], data[0][0]) and rows[2][1].item() == data[7][1].item()
    assert [len(sample) for sample in rows] == [2, 2, 2]
    by_default = default_collate(rows)  # a loader without our collate function is still correct
    fast = collate_tensor_rows(rows)
    assert all(torch.equal(a, b) for a, b in zip(by_default, fast)) and len(fast) == 2
    with pytest.raises(IndexError):
        rows[3]


def test_batch_fetching_gives_the_batches_of_torchdistills_per_sample_path():
    data = digits_split('train')
    torch.manual_seed(3)
    reference = list(DataLoader(BaseDatasetWrapper(data), batch_size=64, sampler=RandomSampler(data)))
    state_after_reference = torch.get_rng_state()
    torch.manual_seed(3)
    fast = list(DataLoader(BatchFetchDatasetWrapper(data), batch_size=64, sampler=RandomSampler(data),
                           collate_fn=collate_tensor_rows))
    assert torch.equal(torch.get_rng_state(), state_after_reference)  # the same random draws
    assert len(reference) == len(fast) == 17
    for (x, y, supp), (fx, fy, fsupp) in zip(reference, fast):
        assert torch.equal(x, fx) and torch.equal(y, fy) and supp == fsupp == {}


def test_a_runner_run_is_bit_identical_with_batch_fetching_and_with_per_sample_loaders(tmp_path, monkeypatch):
    from plugins.runner import run_config
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    run_config('yaml_configs/digits/ce/mlp_teacher.yaml', seed=0, output_dir=str(tmp_path / 'teacher'),
               overrides={'train.num_epochs': 2}, show_progress=False)
    teacher = str(tmp_path / 'teacher' / 'student_best.pt')
    per_sample = {'train.train_data_loader.dataset_wrapper': {}, 'train.train_data_loader.collate_fn': None,
                  'train.val_data_loader.collate_fn': None, 'test.test_data_loader.collate_fn': None}
    results, weights = {}, {}
    for name, overrides in (('fast', {}), ('per_sample', per_sample)):
        results[name] = run_config('yaml_configs/digits/kd/mlp4_from_mlp256.yaml', seed=5, teacher_ckpt=teacher,
                                   output_dir=str(tmp_path / name), show_progress=False,
                                   overrides=dict(overrides, **{'train.num_epochs': 4}))
        weights[name] = torch.load(tmp_path / name / 'student_best.pt', weights_only=True)['model']
    assert [h['train_loss'] for h in results['fast']['history']] == \
        [h['train_loss'] for h in results['per_sample']['history']]
    assert results['fast']['test'] == results['per_sample']['test']
    assert all(torch.equal(weights['fast'][key], weights['per_sample'][key]) for key in weights['fast'])
