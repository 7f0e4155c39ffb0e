import pytest
from torch import nn
from torchdistill.losses.registry import get_high_level_loss

import plugins  # noqa: F401  (registers AnnealingKDLoss)
from plugins.config_util import apply_overrides, criterion_modules, has_dotted, loader_in_force, set_dotted, \
    settings_with_defaults, stage_config, stage_configs, uses_teacher
from plugins.errors import ConfigError

TWO_STAGES = {'stage1': {'num_epochs': 2, 'train_data_loader': {'dataset_id': 'a'}}, 'stage2': {'num_epochs': 3},
              'best_checkpoints': {'dst_ckpt': 'x.pt'}}


def test_stages_of_a_train_section_in_order():
    assert stage_configs({'num_epochs': 5}) == [('train', {'num_epochs': 5})]
    assert [(field, stage['num_epochs']) for field, stage in stage_configs(TWO_STAGES)] == \
        [('train.stage1', 2), ('train.stage2', 3)]
    assert stage_config(TWO_STAGES, 2) is TWO_STAGES['stage2'] and stage_config({'num_epochs': 5})['num_epochs'] == 5


@pytest.mark.parametrize('train, message', [
    ({'stage1': {}, 'stage3': {}},
     r"train: stage keys must be stage1, stage2, ... without gaps; unexpected \['stage3'\]"),
    ({'stage1': {}, 'stage2': [1]}, r'train.stage2 must be a mapping \(num_epochs, loaders, criterion...\), got list'),
])
def test_malformed_stages_are_named(train, message):
    with pytest.raises(ConfigError, match=message):
        stage_configs(train)


def test_a_stage_without_a_loader_keeps_the_previous_one():
    assert [loader_in_force(TWO_STAGES, n)['dataset_id'] for n in (1, 2)] == ['a', 'a']
    assert loader_in_force(TWO_STAGES, 2, 'val_data_loader') is None


def test_dotted_keys():
    config = {'train': {'stage1': {'num_epochs': 2}}, 'teacher_cache': {'mode': 'off'}}
    assert has_dotted(config, 'train.stage1.num_epochs') and not has_dotted(config, 'train.stage2.num_epochs')
    assert not has_dotted(config, 'train.stage1.num_epochs.x') and not has_dotted([], 'train')
    overridden = apply_overrides(config, {'train.stage1.num_epochs': 5, 'teacher_cache.mode': 'auto'})
    assert overridden['train']['stage1']['num_epochs'] == 5 and overridden is not config
    set_dotted(config, 'teacher_cache.mode', 'disk')
    assert config['teacher_cache'] == {'mode': 'disk'}
    with pytest.raises(ConfigError, match=r"override 'train.stage2.num_epochs': 'stage2' is not in the config"):
        apply_overrides(config, {'train.stage2.num_epochs': 1})
    with pytest.raises(ConfigError, match=r"override 'train.stage1.epochs': 'epochs' is not in the config"):
        set_dotted(config, 'train.stage1.epochs', 1)


def _weighted_sum(**terms):
    return get_high_level_loss({'key': 'WeightedSumLoss', 'kwargs': {'sub_terms': {
        name: {'criterion': criterion, 'weight': 1.0} for name, criterion in terms.items()}}})


def test_criterion_terms_are_walked_and_teacher_readers_found():
    paths = dict(student_module_path='.', student_module_io='output', teacher_module_path='.',
                 teacher_module_io='output')
    annealing = {'key': 'AnnealingKDLoss', 'kwargs': dict(paths, max_temperature=2)}
    cross_entropy = {'key': 'CrossEntropyLoss', 'kwargs': {}}
    reads_teacher, labels_only = _weighted_sum(kd=annealing, ce=cross_entropy), _weighted_sum(ce=cross_entropy)
    assert {type(module).__name__ for module in criterion_modules(reads_teacher)} >= \
        {'WeightedSumLoss', 'AnnealingKDLoss', 'CrossEntropyLoss'}
    assert uses_teacher(reads_teacher) and not uses_teacher(labels_only) and not uses_teacher(nn.MSELoss())


def test_settings_sections_get_defaults_and_name_unknown_fields():
    defaults = {'mode': 'off', 'cache_dir': None}
    assert settings_with_defaults({'mode': 'auto'}, 'teacher_cache', defaults, 'fields') == \
        {'mode': 'auto', 'cache_dir': None}
    with pytest.raises(ConfigError, match=r"teacher_cache: unknown field\(s\) \['mdoe'\]; accepted: \['cache_dir', "
                                          r"'mode'\]"):
        settings_with_defaults({'mdoe': 'auto'}, 'teacher_cache', defaults, 'fields', error=ConfigError)
    with pytest.raises(ValueError, match=r'train.best_checkpoints must be a mapping with dst_ckpt, got None'):
        settings_with_defaults(None, 'train.best_checkpoints', defaults, 'dst_ckpt')
