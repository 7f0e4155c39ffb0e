"""How the generators write a config (yaml_configs/config_generation.dump_config): tags, comments, anchors, layout.

The generated files themselves are checked against the script in test_cifar_configs.py; here the dumper is checked
on a structure with every feature it supports, loaded back with a loader that keeps the tags."""
import pytest
import yaml

from yaml_configs.config_generation import STAGE_CHECKPOINTS_HOOK, Anchor, Flow, FlowMapping, ImportCall, \
    ImportGet, Note, best_checkpoints, dst_ckpt, dump_config


class TagKeepingLoader(yaml.SafeLoader):
    """Loads ``!tag`` mappings as ('!tag', {...}) so that a lost or changed tag shows."""


TagKeepingLoader.add_multi_constructor('!', lambda loader, suffix, node: (
    '!' + suffix, loader.construct_mapping(node, deep=True)))

STRUCTURE = {
    'dependencies': [{'name': 'plugins'}],
    'datasets': {'cifar10/train': ImportCall('plugins.datasets.cifar.cifar_split',
                                             root=Note('~/datasets', '$KD_DATA_ROOT overrides it'), val_size=0.1)},
    'models': {'student_model': {'key': 'resnet8', 'kwargs': {'num_classes': 10},
                                 'dst_ckpt': dst_ckpt('cifar10/kd/resnet8_from_resnet110.yaml')}},
    'train': {'best_checkpoints': best_checkpoints('accuracy', 'cifar10/kd/resnet8_from_resnet110.yaml'),
              'stage1': {'post_epoch_process': STAGE_CHECKPOINTS_HOOK, 'requires_grad': False,
                         'sampler': {'class_or_func': ImportGet('torch.utils.data.RandomSampler'),
                                     'kwargs': None},
                         'scheduler': {'milestones': Flow([80, 120]), 'gamma': 0.1},
                         'psi': Note(FlowMapping(ramp='3/4'), 'Eq. 7'), 'weight_decay': 0.0001}},
}
FINAL = './runs/cifar10/kd/resnet8_from_resnet110/student_best.pt'
LOADED = {
    'dependencies': [{'name': 'plugins'}],
    'datasets': {'cifar10/train': ('!import_call', {'key': 'plugins.datasets.cifar.cifar_split', 'init': {
        'kwargs': {'root': '~/datasets', 'val_size': 0.1}}})},
    'models': {'student_model': {'key': 'resnet8', 'kwargs': {'num_classes': 10}, 'dst_ckpt': FINAL}},
    'train': {'best_checkpoints': {'dst_ckpt': FINAL, 'dst_format': 'torchdistill', 'metric': 'accuracy'},
              'stage1': {'post_epoch_process': 'keep_best_stage_checkpoints', 'requires_grad': False,
                         'sampler': {'class_or_func': ('!import_get', {'key': 'torch.utils.data.RandomSampler'}),
                                     'kwargs': None},
                         'scheduler': {'milestones': [80, 120], 'gamma': 0.1},
                         'psi': {'ramp': '3/4'}, 'weight_decay': 0.0001}},
}


def test_a_dumped_config_loads_to_its_structure_with_its_tags():
    text = dump_config(STRUCTURE, '# title\n# second line\n')
    assert yaml.load(text, Loader=TagKeepingLoader) == LOADED
    assert text.startswith('# title\n# second line\ndependencies:\n- name: plugins\n\ndatasets:\n')
    assert '\n\nmodels:\n' in text and '\n\ntrain:\n' in text  # a blank line between sections, none elsewhere
    assert '\n\n\n' not in text and not text.endswith('\n\n')


def test_notes_become_comments_at_their_keys():
    lines = dump_config(STRUCTURE, '').splitlines()
    assert "        root: ~/datasets  # $KD_DATA_ROOT overrides it" in lines
    assert "    psi: {ramp: 3/4}  # Eq. 7" in lines
    assert "    post_epoch_process: keep_best_stage_checkpoints  # the stage ends on its best checkpoint" in lines
    above = lines.index(f"    dst_ckpt: {FINAL}")  # models.student_model.dst_ckpt, with its comment above it
    assert lines[above - 1] == ("    # the final student: torchdistill's example scripts save and reload it; our "
                                "runner uses --output-dir")
    assert lines[lines.index('  best_checkpoints:  # Algorithm 1, by post_epoch_process '
                             "'keep_best_stage_checkpoints' (plugins/stages.py)") + 2] == f"    dst_ckpt: {FINAL}"
    assert "      kwargs: null" in lines and "      milestones: [80, 120]" in lines


def test_a_note_in_a_list_is_refused():
    with pytest.raises(yaml.representer.RepresenterError):
        dump_config({'dependencies': [Note({'name': 'plugins'}, 'a comment')]}, '')


def test_notes_and_anchors_together():
    shared = Anchor('dst_ckpt', FINAL)
    text = dump_config({'models': {'student_model': {'dst_ckpt': Note(shared, 'the final student')}},
                        'train': {'best_checkpoints': {'dst_ckpt': Note(shared, 'the same path')}}}, '')
    assert f'    dst_ckpt: &dst_ckpt {FINAL}  # the final student' in text.splitlines()
    assert '    dst_ckpt: *dst_ckpt  # the same path' in text.splitlines()
    assert yaml.safe_load(text) == {'models': {'student_model': {'dst_ckpt': FINAL}},
                                    'train': {'best_checkpoints': {'dst_ckpt': FINAL}}}
