"""Teacher-output caching: exact (same losses as without it), invalidated by any change, off for random inputs."""
import copy
import json
import logging
import os

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, RandomSampler, SequentialSampler, TensorDataset
from torchdistill.core.distillation import get_distillation_box
from torchvision.transforms import Compose, Lambda, RandomHorizontalFlip

import plugins.runner as runner
from plugins.caching import CachedTeacherWrapper, TeacherCacheDatasetWrapper, apply_teacher_cache, \
    teacher_cache_settings
from plugins.caching.fingerprint import sample_key
from plugins.config_checks import ConfigError, checked_stages
from plugins.idle_teacher import release_idle_teacher
from plugins.models.mlp import mlp
from runner_fixtures import save_teacher, write_config

CPU = torch.device('cpu')
NUM_FEATURES, NUM_CLASSES = 6, 3


class CountingTeacher(nn.Module):
    """The teacher MLP, counting how many samples it was run on (no hooks: hooks would turn the cache off)."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = mlp(NUM_FEATURES, [16], NUM_CLASSES)
        self.samples_seen = 0

    def forward(self, x):
        self.samples_seen += x.shape[0]
        return self.net(x)


class TransformedTensors(Dataset):
    """(transform(x), y) pairs over tensors, like a torchvision dataset with a ``transform``."""

    def __init__(self, features, labels, transform=None):
        self.features, self.labels, self.transform = features, labels, transform

    def __getitem__(self, index):
        x = self.features[index]
        return (x if self.transform is None else self.transform(x)), self.labels[index]

    def __len__(self):
        return len(self.labels)


class Scale:
    """A deterministic transform."""

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, x):
        return x * self.factor

    def __repr__(self):
        return f'Scale({self.factor})'


class AddNoise:
    """A random transform whose name does not say so (found only by loading a sample twice)."""

    def __call__(self, x):
        return x + 0.1 * torch.randn_like(x)


def match_rows(served, expected):
    """For each served row: the largest absolute difference to its closest expected row, and that row's index."""
    differences = (served[:, None, :] - expected[None, :, :]).abs().amax(dim=2)
    return differences.min(dim=1)


def make_data(n=40, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, NUM_FEATURES, generator=generator), torch.randint(0, NUM_CLASSES, (n,), generator=generator)


def loader(dataset_id, sampler=RandomSampler, batch_size=8):
    return {'dataset_id': dataset_id, 'sampler': {'class_or_func': sampler, 'kwargs': {}},
            'kwargs': {'batch_size': batch_size, 'num_workers': 0}}


def make_config(train_set, cache=None, two_stages=False, epochs=2, ckpt_dir=None):
    val_set = TensorDataset(*make_data(8, seed=2))
    stage = {
        'num_epochs': epochs, 'pre_epoch_process': 'advance_loss_schedules',
        'train_data_loader': loader('train'), 'val_data_loader': loader('val', SequentialSampler),
        'teacher': {'forward_proc': 'forward_batch_only', 'requires_grad': False},
        'student': {'forward_proc': 'forward_batch_only', 'requires_grad': True},
        'optimizer': {'key': 'SGD', 'kwargs': {'lr': 0.1, 'momentum': 0.9}},
        'criterion': {'key': 'WeightedSumLoss', 'kwargs': {'sub_terms': {'kd': {'criterion': {
            'key': 'AnnealingKDLoss', 'kwargs': {
                'student_module_path': '.', 'student_module_io': 'output', 'teacher_module_path': '.',
                'teacher_module_io': 'output', 'max_temperature': 2}}, 'weight': 1.0}}}}}
    dst_ckpt = os.path.join(str(ckpt_dir), 'student_best.pt') if two_stages else None  # Algorithm 1's hooks
    train = {'best_checkpoints': {'dst_ckpt': dst_ckpt},
             'stage1': dict(stage, post_epoch_process='keep_best_stage_checkpoints'), 'stage2': {
        'num_epochs': 1, 'pre_epoch_process': 'keep_teacher_in_eval_mode',
        'post_epoch_process': 'keep_best_stage_checkpoints',
        'teacher': {'forward_proc': 'forward_batch_only', 'requires_grad': False},
        'student': {'forward_proc': 'forward_batch_only', 'requires_grad': True},
        'optimizer': {'key': 'SGD', 'kwargs': {'lr': 0.1}},
        'criterion': {'key': 'WeightedSumLoss', 'kwargs': {'sub_terms': {'ce': {
            'criterion': {'key': 'CrossEntropyLoss', 'kwargs': {}},
            'criterion_wrapper': {'key': 'SimpleLossWrapper', 'kwargs': {
                'input': {'is_from_teacher': False, 'module_path': '.', 'io': 'output'},
                'target': {'uses_label': True}}}, 'weight': 1.0}}}}}} if two_stages else stage
    config = {'datasets': {'train': train_set, 'val': val_set, 'test': TensorDataset(*make_data(8, seed=3))},
              'models': {'teacher_model': {'key': 'mlp', 'weights_in_kwargs': True},
                         'student_model': {'key': 'mlp', 'dst_ckpt': dst_ckpt}},
              'train': train, 'test': {'test_data_loader': loader('test', SequentialSampler)}}
    if cache is not None:
        config['teacher_cache'] = cache
    return config


def make_box(config, teacher):
    stages = checked_stages(config)
    config = apply_teacher_cache(config, stages)
    torch.manual_seed(0)
    student = mlp(NUM_FEATURES, [4], NUM_CLASSES)
    return get_distillation_box(teacher.eval(), student, config['datasets'], copy.deepcopy(config['train']), CPU,
                                None, False, 1)


def train(box, epochs, seed=0):
    """Per-step losses and the teacher's io_dict outputs of ``epochs`` epochs."""
    if seed is not None:
        torch.manual_seed(seed)
    losses, teacher_outputs = [], []
    forward_proc = box.teacher_forward_proc

    def recording_forward_proc(*args, **kwargs):
        output = forward_proc(*args, **kwargs)
        teacher_outputs.append(output)
        return output

    box.teacher_forward_proc = recording_forward_proc
    for epoch in range(epochs):
        box.pre_epoch_process(epoch=epoch)
        for sample_batch, targets, supp_dict in box.train_data_loader:
            loss = box.forward_process(sample_batch, targets, supp_dict)
            box.post_forward_process(loss=loss)
            losses.append(loss.item())
        box.post_epoch_process()
    return torch.tensor(losses), teacher_outputs


def test_cached_losses_equal_uncached_losses_over_two_epochs():
    data = TensorDataset(*make_data())
    reference, _ = train(make_box(make_config(data), CountingTeacher()), epochs=2)
    teacher = CountingTeacher()
    box = make_box(make_config(data, cache={'mode': 'memory'}), teacher)
    assert isinstance(box.teacher_model, CachedTeacherWrapper)
    cached, _ = train(box, epochs=2)
    assert len(cached) == len(reference) == 10
    assert torch.allclose(cached, reference, atol=1e-6, rtol=0)
    assert teacher.samples_seen == len(data)  # epoch 1 only


def test_teacher_is_not_called_on_cache_hits_and_served_outputs_are_its_outputs():
    features, labels = make_data()
    teacher = CountingTeacher()
    box = make_box(make_config(TensorDataset(features, labels), cache={'mode': 'memory'}), teacher)
    train(box, epochs=1)
    assert teacher.samples_seen == len(labels)
    _, outputs = train(box, epochs=1)
    assert teacher.samples_seen == len(labels)  # no call at all in the second epoch
    with torch.no_grad():
        expected = teacher.net(features)
    served = torch.cat(outputs)
    assert served.shape == expected.shape
    # Every served row is the teacher's output for some sample, each sample exactly once.
    distances, rows = match_rows(served, expected)
    assert torch.all(distances < 1e-6)
    assert sorted(rows.tolist()) == list(range(len(labels)))


def test_changed_teacher_weights_invalidate_the_cache():
    features, labels = make_data()
    teacher = CountingTeacher(seed=0)
    box = make_box(make_config(TensorDataset(features, labels), cache={'mode': 'memory'}), teacher)
    train(box, epochs=1)
    teacher.load_state_dict(CountingTeacher(seed=5).state_dict())  # in place, as a checkpoint reload does
    seen = teacher.samples_seen
    _, outputs = train(box, epochs=1)
    assert teacher.samples_seen == seen + len(labels)
    with torch.no_grad():
        new_outputs = teacher.net(features)
    assert torch.all(match_rows(torch.cat(outputs), new_outputs).values < 1e-6)


def test_changed_samples_are_recomputed_and_unchanged_ones_served():
    features, labels = make_data()
    teacher = CountingTeacher()
    config = make_config(TensorDataset(features, labels), cache={'mode': 'memory'})
    config['train']['train_data_loader'] = loader('train', SequentialSampler)
    box = make_box(config, teacher)
    train(box, epochs=1)
    features[3] += 1.0  # one sample of the first batch of 8 changes
    seen = teacher.samples_seen
    _, outputs = train(box, epochs=1)
    assert teacher.samples_seen == seen + 8  # only the batch holding the changed sample ran the teacher
    with torch.no_grad():
        assert torch.allclose(outputs[0][3], teacher.net(features[3:4])[0], atol=1e-6)


def test_changed_transform_invalidates_the_cache():
    features, labels = make_data()
    teacher = CountingTeacher()
    dataset = TransformedTensors(features, labels, transform=Scale(1.0))
    box = make_box(make_config(dataset, cache={'mode': 'memory'}), teacher)
    train(box, epochs=1)
    dataset.transform = Scale(2.0)
    seen = teacher.samples_seen
    _, outputs = train(box, epochs=1)
    assert teacher.samples_seen == seen + len(labels)
    with torch.no_grad():
        expected = teacher.net(features * 2.0)
    assert torch.all(match_rows(torch.cat(outputs), expected).values < 1e-6)
    # The dataset key (class, length, transform repr) differs too, so a disk cache would use another file.
    assert TeacherCacheDatasetWrapper(dataset).dataset_key != TeacherCacheDatasetWrapper(
        TransformedTensors(features, labels, transform=Scale(1.0))).dataset_key


@pytest.mark.parametrize('transform, found', [
    (Compose([RandomHorizontalFlip(), Lambda(lambda x: x.reshape(-1))]), 'RandomHorizontalFlip'),
    (Compose([Lambda(lambda x: x.reshape(-1)), AddNoise()]), 'a sample differs when loaded twice')])
def test_random_transform_turns_caching_off_with_a_warning_and_keeps_training_unchanged(transform, found, caplog):
    features, labels = make_data()
    dataset = TransformedTensors(features.reshape(len(labels), 1, 2, 3), labels, transform=transform)
    caplog.set_level(logging.WARNING)
    wrapper = TeacherCacheDatasetWrapper(dataset)
    assert not wrapper.enabled and wrapper.random_transforms == [found]
    assert 'random' in caplog.text and found in caplog.text
    assert 'cache_index' not in wrapper[0][2]
    # No reseeding after make_box: the random-number streams flow from box construction into training.
    reference, _ = train(make_box(make_config(dataset), CountingTeacher()), epochs=2, seed=None)
    teacher = CountingTeacher()
    cached, _ = train(make_box(make_config(dataset, cache={'mode': 'auto'}), teacher), epochs=2, seed=None)
    assert teacher.samples_seen == 2 * len(labels)  # the teacher ran on every step
    assert torch.equal(cached, reference)  # the reproducibility check restored the random-number states


def test_memory_and_disk_modes_give_identical_outputs_and_disk_is_reused(tmp_path):
    data = TensorDataset(*make_data())
    memory, _ = train(make_box(make_config(data, cache={'mode': 'memory'}), CountingTeacher()), epochs=2)
    disk_settings = {'mode': 'disk', 'cache_dir': str(tmp_path)}
    box = make_box(make_config(data, cache=disk_settings), CountingTeacher())
    disk, disk_outputs = train(box, epochs=2)
    assert torch.equal(memory, disk)
    [directory] = os.listdir(tmp_path)
    meta = json.loads((tmp_path / directory / 'meta.json').read_text())
    assert meta['num_samples'] == len(data) and meta['fields'] == [['', [NUM_CLASSES], 'float32']]
    # A new run (new box, new wrapper) with the same teacher and data reads the disk cache from its first step.
    teacher = CountingTeacher()
    again, again_outputs = train(make_box(make_config(data, cache=disk_settings), teacher), epochs=2)
    assert teacher.samples_seen == 0
    assert torch.equal(again, disk)
    assert all(torch.equal(a, b) for a, b in zip(again_outputs, disk_outputs))
    # Other teacher weights: another directory, nothing stale served.
    other = CountingTeacher(seed=9)
    train(make_box(make_config(data, cache=disk_settings), other), epochs=1)
    assert other.samples_seen == len(data) and len(os.listdir(tmp_path)) == 2


def test_auto_mode_uses_disk_when_the_cache_exceeds_max_memory(tmp_path):
    data = TensorDataset(*make_data())
    box = make_box(make_config(data, cache={'mode': 'auto', 'max_memory_mb': 0, 'cache_dir': str(tmp_path)}),
                   CountingTeacher())
    train(box, epochs=1)
    [(store, _)] = box.teacher_model.stores.values()
    assert store.mode == 'disk' and store.num_filled() == len(data)
    box = make_box(make_config(data, cache={'mode': 'auto', 'cache_dir': str(tmp_path / 'unused')}), CountingTeacher())
    train(box, epochs=1)
    [(store, _)] = box.teacher_model.stores.values()
    assert store.mode == 'memory' and not os.path.exists(tmp_path / 'unused')


def cache_fields(features, labels):
    dataset = TeacherCacheDatasetWrapper(TensorDataset(features, labels))
    batch = [dataset[i] for i in range(len(labels))]
    return {key: torch.tensor([sample[2][key] for sample in batch]) for key in batch[0][2]}


def test_auto_mode_shares_a_disk_cache_between_distributed_ranks(tmp_path):
    features, labels = make_data(16)
    supp = cache_fields(features, labels)
    ranks = [CachedTeacherWrapper(CountingTeacher().eval(), mode='auto', cache_dir=str(tmp_path), distributed=True)
             for _ in range(2)]
    with torch.no_grad():
        first = ranks[0](features[:8], labels[:8], {key: value[:8] for key, value in supp.items()})
        ranks[1](features[8:], labels[8:], {key: value[8:] for key, value in supp.items()})
        served = ranks[1](features[:8], labels[:8], {key: value[:8] for key, value in supp.items()})
    assert ranks[1].teacher.samples_seen == 8  # rank 1 read what rank 0 wrote
    assert torch.equal(served, first) and len(os.listdir(tmp_path)) == 1


def test_teachers_the_cache_cannot_serve_exactly_run_every_time(caplog):
    features, labels = make_data(16)
    supp = cache_fields(features, labels)
    hooked, training = CountingTeacher().eval(), CountingTeacher().train()
    hooked.net[0].register_forward_hook(lambda module, inputs, output: None)  # a torchdistill forward_hook
    for teacher, reason in ((hooked, 'forward hooks'), (training, 'training mode')):
        wrapper = CachedTeacherWrapper(teacher, mode='memory')
        with torch.no_grad():
            for _ in range(2):
                wrapper(features, labels, supp)
        assert teacher.samples_seen == 32 and not wrapper.stores and reason in caplog.text


def test_mapping_outputs_are_cached_field_by_field():
    class DictTeacher(CountingTeacher):
        def forward(self, x):
            logits = super().forward(x)
            return {'logits': logits, 'hidden': logits * 2}

    features, labels = make_data(16)
    teacher = DictTeacher().eval()
    wrapper = CachedTeacherWrapper(teacher, mode='memory')
    supp = cache_fields(features, labels)
    with torch.no_grad():
        first = wrapper(features, labels, supp)
        second = wrapper(features, labels, supp)
    assert teacher.samples_seen == 16 and set(second) == {'logits', 'hidden'}
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_sample_key_depends_on_content_dtype_and_shape():
    x = torch.arange(6.0)
    assert sample_key(x) == sample_key(x.clone())
    assert len({sample_key(x), sample_key(x.reshape(2, 3)), sample_key(x.double()), sample_key(x.flip(0)),
                sample_key({'a': x}), sample_key([x])}) == 6


def test_stage_two_without_teacher_term_skips_the_teacher_and_keeps_it_on_cpu(tmp_path):
    data = TensorDataset(*make_data())
    teacher = CountingTeacher()
    config = make_config(data, cache={'mode': 'memory'}, two_stages=True, epochs=2, ckpt_dir=tmp_path)
    expanded = apply_teacher_cache(config, checked_stages(config))
    assert 'dataset_wrapper' in expanded['train']['stage1']['train_data_loader']
    assert 'dataset_wrapper' not in expanded['train']['stage2']['train_data_loader']  # plain loader back
    box = make_box(config, teacher)
    assert not release_idle_teacher(box)  # stage 1 reads the teacher
    train(box, epochs=2)  # the box advances to stage 2 after these
    assert box.stage_number == 2 and release_idle_teacher(box)
    seen = teacher.samples_seen
    losses, outputs = train(box, epochs=1)
    assert teacher.samples_seen == seen and all(output is None for output in outputs)
    assert all(torch.isfinite(losses)) and all(p.device.type == 'cpu' for p in teacher.parameters())


def test_runner_results_are_identical_with_and_without_the_cache(tmp_path):
    path = write_config(tmp_path, save_teacher(tmp_path))
    results = {}
    for mode in ('off', 'disk'):
        results[mode] = runner.run_config(str(path), output_dir=str(tmp_path / mode), show_progress=False,
                                          overrides={'teacher_cache.mode': mode,
                                                     'teacher_cache.cache_dir': str(tmp_path / 'cache'),
                                                     'train.stage1.num_epochs': 2, 'train.stage2.num_epochs': 1})
    losses = {mode: [h['train_loss'] for h in result['history']] for mode, result in results.items()}
    assert len(losses['off']) == 3
    assert max(abs(a - b) for a, b in zip(losses['off'], losses['disk'])) <= 1e-6
    assert results['off']['test'] == results['disk']['test']
    assert len(os.listdir(tmp_path / 'cache')) == 1


@pytest.mark.parametrize('section, message', [
    ({'mode': 'fast'}, "teacher_cache.mode must be one of ['off', 'auto', 'memory', 'disk'], got 'fast'"),
    ({'mdoe': 'auto'}, "teacher_cache: unknown field(s) ['mdoe']"),
    ({'max_memory_mb': -1}, 'teacher_cache.max_memory_mb must be a number >= 0'),
    ('auto', 'teacher_cache must be a mapping'),
])
def test_bad_teacher_cache_sections_are_named(section, message):
    with pytest.raises(ConfigError) as error:
        teacher_cache_settings(section)
    assert message in str(error.value)


@pytest.mark.parametrize('kwargs, message', [
    ({'mode': 'off'}, "mode must be one of ['auto', 'memory', 'disk'], got 'off'"),  # 'off': no wrapper at all
    ({'max_memory_mb': True}, 'max_memory_mb must be a number >= 0, got True'),
    ({'cache_dir': 3}, 'cache_dir must be a directory path or null, got 3'),
])
def test_bad_wrapper_kwargs_are_named_as_the_section_is(kwargs, message):
    with pytest.raises(ValueError) as error:
        CachedTeacherWrapper(nn.Linear(2, 2), **kwargs)
    assert str(error.value) == message


def test_yaml_booleans_and_defaults():
    assert teacher_cache_settings(None) == {'mode': 'off', 'cache_dir': None, 'max_memory_mb': 1024}
    assert teacher_cache_settings({'mode': False})['mode'] == 'off'
    assert teacher_cache_settings({'mode': True})['mode'] == 'auto'


@pytest.mark.parametrize('edit, message', [
    (lambda stage: stage['teacher'].update(requires_grad=True), 'train.teacher.requires_grad must be false'),
    (lambda stage: stage['teacher'].update(forward_hook={'output': ['net.0']}), 'train.teacher.forward_hook is set'),
    (lambda stage: stage['train_data_loader'].update(dataset_wrapper={'key': 'CRDDatasetWrapper'}),
     "train.train_data_loader.dataset_wrapper is already 'CRDDatasetWrapper'"),
])
def test_configs_the_cache_cannot_serve_fail_before_training(edit, message):
    config = make_config(TensorDataset(*make_data()), cache={'mode': 'auto'})
    edit(config['train'])
    with pytest.raises(ConfigError) as error:
        apply_teacher_cache(config, checked_stages(config))
    assert message in str(error.value)
