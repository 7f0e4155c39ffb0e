"""Every CIFAR config: settings, what each method changes, and one short training run on tiny CIFAR files."""
import importlib.util
import os
import sys

import pytest
import torch
from torch.utils.data import DataLoader
from torchdistill.models.registry import get_model

from benchmarks.configs import read_structure
from benchmarks.suites.cifar import FAMILIES, build_cifar10, build_cifar100
from continuation import DEFAULT_MARGIN
from plugins.config_checks import checked_stages
from plugins.datasets.cifar import cifar_split
from plugins.runner import apply_overrides, load_config, run_config

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for cifar_fixtures
from cifar_fixtures import write_tiny_cifar10, write_tiny_cifar100  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location('cifar_configs', os.path.join(REPO, 'yaml_configs', 'cifar_configs.py'))
cifar_configs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cifar_configs)
CONFIGS = sorted(cifar_configs.all_configs())
NUM_CLASSES = {'cifar10': 10, 'cifar100': 100}
# ResNet-110 / ResNet-20 would make the one-epoch runs slow on CPU: the runs train them as ResNet-8.
SHRUNK = {'resnet110': 'resnet8', 'resnet20': 'resnet8'}
TINY_DATA_CNN_LR = 0.01


def parts(relative_path):
    """(dataset, method, student, teacher or None) of ``cifar10/kd/resnet8_from_resnet110.yaml``."""
    dataset, method, name = relative_path[:-len('.yaml')].split('/')
    student, _, teacher = name.partition('_from_')
    return dataset, method, student, teacher or None


def full_path(relative_path):
    return os.path.join(REPO, 'yaml_configs', relative_path)


@pytest.fixture(scope='module')
def tiny_cifar(tmp_path_factory):
    """Tiny CIFAR-10 / CIFAR-100 (40 training images each), random teacher checkpoints and the data root."""
    root = tmp_path_factory.mktemp('cifar')
    write_tiny_cifar10(root, train_per_class=4, test_per_class=1)
    write_tiny_cifar100(root, max_images=40)
    ckpts = {}
    torch.manual_seed(0)
    for dataset, num_classes in NUM_CLASSES.items():
        for key in ('resnet8', 'plain_cnn10', 'plain_cnn4'):
            ckpts[dataset, key] = str(root / f'{dataset}_{key}.pt')
            torch.save({'model': get_model(key, num_classes=num_classes).state_dict()}, ckpts[dataset, key])
    ckpts['root'] = str(root)
    # Batches of a few dozen images gain nothing from intra-op threads, and on a busy 2-core machine the
    # threads' spin-waiting made these runs ten times slower.
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('KD_DATA_ROOT', str(root))
        patch.setenv('KD_VERIFY_MD5', '0')
        patch.setenv('KD_DOWNLOAD', '0')
        yield ckpts
    torch.set_num_threads(num_threads)


def without_datasets(config):
    return {key: value for key, value in config.items() if key != 'datasets'}


def differences(a, b, prefix=''):
    """Dotted paths where two nested dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = set()
        for key in set(a) | set(b):
            found |= differences(a.get(key), b.get(key), f'{prefix}{key}.')
        return found
    return set() if a == b else {prefix[:-1]}


def test_configs_on_disk_are_what_the_script_writes():
    for path, text in cifar_configs.all_configs().items():
        with open(full_path(path)) as f:
            assert f.read() == text, f'{path} differs: run python yaml_configs/cifar_configs.py'
    # Every family and method for both data sets: 6 scratch, 4 KD (TA and student), 2 TAKD, 2 + 2 ours.
    assert len(CONFIGS) == 2 * 16
    assert sorted({parts(path)[1] for path in CONFIGS}) == ['annealing_kd', 'ce', 'continuation_kd', 'kd', 'takd']


@pytest.mark.parametrize('path', CONFIGS)
def test_table6_settings(path, tiny_cifar, tmp_path):
    dataset, method, student, teacher = parts(path)
    config = load_config(full_path(path))
    assert sorted(config['datasets']) == [f'{dataset}/{split}' for split in ('test', 'train', 'val')]
    assert (len(config['datasets'][f'{dataset}/train']), len(config['datasets'][f'{dataset}/val'])) == (36, 4)
    models = config['models']
    student_model = models.get('student_model', models.get('model'))
    assert (student_model['key'], student_model['kwargs']) == (student, {'num_classes': NUM_CLASSES[dataset]})
    if teacher is not None:
        assert (models['teacher_model']['key'], models['teacher_model']['kwargs']) == \
               (teacher, {'num_classes': NUM_CLASSES[dataset]})
        # src_ckpt is where the runner puts the checkpoint of the config that trains this teacher.
        ckpt_dir, ckpt_name = os.path.split(models['teacher_model']['src_ckpt'])
        assert ckpt_name == 'student_best.pt'
        assert os.path.isfile(os.path.join(REPO, 'yaml_configs', ckpt_dir[len('./runs/'):] + '.yaml'))
    stages = [config['train']] if 'stage1' not in config['train'] else \
        [config['train']['stage1'], config['train']['stage2']]
    assert len(stages) == (2 if method == 'annealing_kd' else 1)
    # Continuation-KD runs the settings of its own paper: 200 epochs, lr 0.2, batch 32 (lr steps at 50% / 75%)
    epochs, lr, milestones, batch_size = (200, 0.2, [100, 150], 32) if method == 'continuation_kd' else \
        (160, 0.1, [80, 120], 128)
    for stage in stages:
        assert stage['num_epochs'] == epochs
        assert stage['optimizer'] == {'key': 'SGD', 'kwargs': {'lr': lr, 'momentum': 0.9, 'weight_decay': 0.0001}}
        assert stage['scheduler'] == {'key': 'MultiStepLR', 'kwargs': {'milestones': milestones, 'gamma': 0.1}}
    assert stages[0]['train_data_loader']['kwargs']['batch_size'] == batch_size
    terms = {name: term['criterion'] for stage in stages for name, term in
             stage['criterion']['kwargs']['sub_terms'].items()}
    expected_terms = {'ce': ['ce'], 'kd': ['kd'], 'takd': ['kd'], 'annealing_kd': ['annealing_kd', 'ce'],
                      'continuation_kd': ['continuation_kd']}[method]
    assert sorted(terms) == expected_terms
    if 'kd' in terms:
        assert (terms['kd']['kwargs']['temperature'], terms['kd']['kwargs']['alpha']) == (5.0, 0.5)
    if method == 'annealing_kd':
        assert terms['annealing_kd']['kwargs']['max_temperature'] == 10
        assert stages[0]['pre_epoch_process'] == 'advance_loss_schedules'
        assert stages[1]['pre_epoch_process'] == 'keep_teacher_in_eval_mode'  # Stage II still runs the teacher
        assert [stage['post_epoch_process'] for stage in stages] == ['keep_best_stage_checkpoints'] * 2
        assert config['train']['best_checkpoints'] == {
            'dst_ckpt': student_model['dst_ckpt'], 'dst_format': 'torchdistill', 'metric': 'accuracy'}
    elif method in ('kd', 'takd'):
        assert stages[0]['pre_epoch_process'] == 'keep_teacher_in_eval_mode'
    # What torchdistill's image-classification script needs: the final checkpoint, its log frequency, the data root.
    assert student_model['dst_ckpt'] == f'./runs/{path[:-len(".yaml")]}/student_best.pt'
    assert isinstance(config['train']['log_freq'], int)
    datasets = read_structure(full_path(path))['datasets']  # built when the YAML loads: read them unbuilt
    assert [datasets[f'{dataset}/{split}']['init']['kwargs']['root'] for split in ('train', 'val', 'test')] == \
        ['~/datasets'] * 3
    if method == 'continuation_kd':  # the published objective, T_max 20, psi of Eq. 7
        kwargs = terms['continuation_kd']['kwargs']
        assert {key: value for key, value in kwargs.items() if not key.endswith('_module_path')
                and not key.endswith('_module_io')} == {
            'objective': 'annealed_hinge', 'max_temperature': 20, 'margin': DEFAULT_MARGIN, 'distance_reduction': 'mean',
            'psi': {'ramp': '3/4'}, 'anneal_teacher': True, 'anneal_margin': True, 'task': 'classification'}
    dummy_ckpt = tmp_path / 'teacher.pt'
    dummy_ckpt.write_bytes(b'')
    assert len(checked_stages(config, teacher_ckpt=str(dummy_ckpt))) == len(stages)


@pytest.mark.parametrize('dataset', sorted(NUM_CLASSES))
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_methods_differ_from_vanilla_kd_only_where_the_method_does(dataset, family, tiny_cifar):
    names = FAMILIES[family]
    t, ta, s = names['teacher'], names['ta'], names['student']
    load = lambda method, name: without_datasets(load_config(full_path(f'{dataset}/{method}/{name}.yaml')))  # noqa
    kd = load('kd', f'{s}_from_{t}')
    dst = 'models.student_model.dst_ckpt'  # each config's own final checkpoint
    assert differences(kd, load('kd', f'{ta}_from_{t}')) == {'models.student_model.key', dst}
    assert differences(kd, load('takd', f'{s}_from_{ta}')) == {
        'models.teacher_model.key', 'models.teacher_model.src_ckpt', dst}
    assert differences(kd, load('continuation_kd', f'{s}_from_{t}')) == {
        'train.criterion.kwargs.sub_terms.kd', 'train.criterion.kwargs.sub_terms.continuation_kd',
        'train.pre_epoch_process', 'train.num_epochs', 'train.optimizer.kwargs.lr', 'train.scheduler.kwargs.milestones',
        'train.train_data_loader.kwargs.batch_size', dst}  # the Continuation-KD paper's own settings
    scratch = load('ce', s)
    assert differences(scratch['models']['model'], kd['models']['student_model']) == {'dst_ckpt'}
    assert scratch['train']['model'] == {'forward_proc': 'forward_batch_only'}
    assert differences({k: v for k, v in kd['train'].items() if k not in ('teacher', 'student', 'criterion')},
                       {k: v for k, v in scratch['train'].items() if k not in ('model', 'criterion')}) == {
        'pre_epoch_process'}  # the teacher in eval mode
    annealing = load('annealing_kd', f'{s}_from_{t}')
    assert differences(annealing['models'], kd['models']) == {'student_model.dst_ckpt'}
    stage1, stage2 = annealing['train']['stage1'], annealing['train']['stage2']
    assert differences({**kd['train'], 'log_freq': None}, stage1) == {
        'criterion.kwargs.sub_terms.kd', 'criterion.kwargs.sub_terms.annealing_kd', 'pre_epoch_process',
        'post_epoch_process'}
    loaders = {name: stage1[name] for name in ('train_data_loader', 'val_data_loader')}
    assert differences(stage1, {**stage2, **loaders}) == {
        'criterion.kwargs.sub_terms.annealing_kd', 'criterion.kwargs.sub_terms.ce', 'pre_epoch_process'}
    assert stage2['criterion'] == scratch['train']['criterion']


def quick_overrides(config_path, method):
    """One epoch (more for the scheduled losses, so that their schedules move), single-process data loading.

    Continuation-KD gets 4 epochs at T_max 4: the smallest run where Eq. 7's psi (ramp 3/4 of the run) reaches 1.
    """
    prefix = 'train.stage1' if method == 'annealing_kd' else 'train'
    overrides = {f'{prefix}.train_data_loader.kwargs.num_workers': 0,
                 f'{prefix}.val_data_loader.kwargs.num_workers': 0, 'test.test_data_loader.kwargs.num_workers': 0}
    if method == 'annealing_kd':
        overrides.update({'train.stage1.num_epochs': 2, 'train.stage2.num_epochs': 1, 'train.stage1.criterion.kwargs.'
                          'sub_terms.annealing_kd.criterion.kwargs.max_temperature': 2})
    elif method == 'continuation_kd':
        overrides.update({'train.num_epochs': 4,
                          'train.criterion.kwargs.sub_terms.continuation_kd.criterion.kwargs.max_temperature': 4})
        if 'plain_cnn' in config_path:
            # On 40 noise images with a random teacher, CNN-2 at the paper's lr 0.2 (also at 0.1) diverges within
            # 4 epochs and the runner stops it; the config's own lr is checked by test_table6_settings.
            overrides['train.optimizer.kwargs.lr'] = TINY_DATA_CNN_LR
    else:
        overrides['train.num_epochs'] = 1
    return overrides


@torch.no_grad()
def accuracy_on_test_files(model, dataset):
    model.eval()
    correct = total = 0
    for images, labels in DataLoader(cifar_split(dataset, 'test'), batch_size=64):
        correct += (model(images).argmax(dim=1) == labels).sum().item()
        total += len(labels)
    return 100.0 * correct / total


@pytest.mark.parametrize('path', CONFIGS)
def test_every_config_trains_on_tiny_cifar(path, tiny_cifar, tmp_path):
    dataset, method, student, teacher = parts(path)
    overrides = quick_overrides(path, method)
    student_key = SHRUNK.get(student, student)
    overrides['models.model.key' if method == 'ce' else 'models.student_model.key'] = student_key
    teacher_ckpt = None
    if teacher is not None:
        overrides['models.teacher_model.key'] = SHRUNK.get(teacher, teacher)
        teacher_ckpt = tiny_cifar[dataset, SHRUNK.get(teacher, teacher)]
    result = run_config(full_path(path), output_dir=str(tmp_path), teacher_ckpt=teacher_ckpt, overrides=overrides,
                        show_progress=False)
    expected_epochs = {'annealing_kd': 3, 'continuation_kd': 4}.get(method, 1)
    assert result['epochs'] == len(result['history']) == expected_epochs
    expected_lr = 0.1 if method != 'continuation_kd' else TINY_DATA_CNN_LR if 'plain_cnn' in path else 0.2
    assert result['history'][0]['lr'] == expected_lr
    model = get_model(student_key, num_classes=NUM_CLASSES[dataset])
    assert result['student_params'] == sum(p.numel() for p in model.parameters())
    # The reported test accuracy is the saved best checkpoint's accuracy on the official test files.
    model.load_state_dict(torch.load(tmp_path / 'student_best.pt')['model'])
    assert result['test']['accuracy'] == pytest.approx(accuracy_on_test_files(model, dataset), abs=1e-4)
    schedules = [epoch['schedule'] for epoch in result['history']]
    if method == 'annealing_kd':  # T = tau_max (2) then 1, then Stage II without a schedule
        assert [s['AnnealingKDLoss']['T'] for s in schedules[:2]] == [2, 1] and schedules[2] == {}
    if method == 'continuation_kd':  # T = 4..1 over the run; Eq. 7: psi = e / (0.75 x 4)
        assert [s['ContinuationKDLoss']['T'] for s in schedules] == [4, 3, 2, 1]
        assert [s['ContinuationKDLoss']['psi'] for s in schedules] == pytest.approx([0, 1 / 3, 2 / 3, 1], abs=1e-12)


@pytest.mark.parametrize('build, dataset', [(build_cifar10, 'cifar10'), (build_cifar100, 'cifar100')])
@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_suites_name_existing_configs_and_teacher_roles(build, dataset, family, tiny_cifar, monkeypatch):
    monkeypatch.setenv('KD_DOWNLOAD', '0')  # so that monkeypatch restores what the builder sets
    monkeypatch.setenv('KD_DATA_ROOT', tiny_cifar['root'])
    suite = build({'family': family, 'data_root': '/data/cifar', 'download': 'true'}, quick=True)
    assert (os.environ['KD_DATA_ROOT'], os.environ['KD_DOWNLOAD']) == ('/data/cifar', '1')
    assert suite.name == f'{dataset}-{family}' and suite.teacher_config.startswith(f'yaml_configs/{dataset}/ce/')
    assert sorted(suite.methods) == ['annealing_kd', 'continuation_kd', 'kd', 'scratch', 'takd']
    assert {m: spec.teacher_role for m, spec in suite.methods.items()} == {
        'scratch': None, 'kd': 'teacher', 'takd': 'ta', 'annealing_kd': 'teacher', 'continuation_kd': 'teacher'}
    student = FAMILIES[family]['student']
    for config in [suite.teacher_config, suite.ta_config] + [spec.config for spec in suite.methods.values()]:
        assert os.path.relpath(os.path.join(REPO, config), os.path.join(REPO, 'yaml_configs')) in CONFIGS
    assert all(f'/{student}' in spec.config for spec in suite.methods.values())
    assert suite.ta_config.endswith(f"kd/{FAMILIES[family]['ta']}_from_{FAMILIES[family]['teacher']}.yaml")
    # In quick mode every run is short and valid: the suite-wide keys apply where a config has them (as in the
    # harness), then the method's own overrides.
    monkeypatch.setenv('KD_DATA_ROOT', tiny_cifar['root'])
    monkeypatch.setenv('KD_DOWNLOAD', '0')
    runs = [(suite.teacher_config, {}), (suite.ta_config, {})] + \
        [(spec.config, spec.overrides) for spec in suite.methods.values()]
    for config_path, method_overrides in runs:
        config = load_config(os.path.join(REPO, config_path))
        suite_overrides = {key: value for key, value in suite.quick_overrides.items() if has_key(config, key)}
        config = apply_overrides(config, {**suite_overrides, **method_overrides})
        stages = checked_stages(config, teacher_ckpt=tiny_cifar[dataset, 'resnet8'])
        assert sum(stage['num_epochs'] for _, stage, _ in stages) <= 4, config_path


def has_key(config, dotted_key):
    for key in dotted_key.split('.'):
        if not isinstance(config, dict) or key not in config:
            return False
        config = config[key]
    return True


def test_suite_defaults_and_bad_options(monkeypatch):
    monkeypatch.delenv('KD_DATA_ROOT', raising=False)
    suite = build_cifar10({}, quick=False)
    assert suite.name == 'cifar10-resnet' and 'KD_DATA_ROOT' not in os.environ
    assert suite.teacher_config == 'yaml_configs/cifar10/ce/resnet110.yaml'
    assert all(spec.overrides == {} for spec in suite.methods.values()) and suite.quick_overrides == {}
    with pytest.raises(ValueError, match=r"family must be one of \['cnn', 'resnet'\]"):
        build_cifar100({'family': 'vgg'}, quick=False)
    with pytest.raises(ValueError, match=r"unknown CIFAR suite option\(s\) \['epochs'\]"):
        build_cifar100({'epochs': 3}, quick=False)
