"""Shipped configs under a driver of torchdistill's image-script kind (tests/example_script_driver.py); the GLUE
configs, in the text script's schema, run under tests/text_script_driver.py (test_text_script_driver.py).

Algorithm 1 (Stage II from the best Stage-I checkpoint, the final student the best Stage-II checkpoint), the
teacher's state, the teacher-output cache and the unadvanced-schedule guard must hold whichever driver runs a
config: one that leaves its validation value on the box (our runner) or one that does not (torchdistill's scripts).
"""
import copy
import glob
import os
import sys

import pytest
import torch
from torchdistill.common import yaml_util
from torchdistill.common.main_util import import_dependencies
from torchdistill.models.registry import get_model

import plugins.stages
from plugins.caching import CachedTeacherWrapper

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(TESTS)  # for example_script_driver and cifar_fixtures
from cifar_fixtures import write_tiny_cifar10  # noqa: E402
from example_script_driver import run_like_image_script  # noqa: E402

REPO = os.path.dirname(TESTS)
DIGITS_CONFIGS = sorted(os.path.relpath(path, os.path.join(REPO, 'yaml_configs'))
                        for path in glob.glob(os.path.join(REPO, 'yaml_configs', 'digits', '*', '*.yaml')))
ANNEALING = 'train.stage1.criterion.kwargs.sub_terms.annealing_kd.criterion.kwargs'


def load(relative_path, replace=()):
    """The config as torchdistill's scripts load it (YAML, then its dependencies); ``replace`` edits the text
    first (the datasets are built while the YAML loads)."""
    path = os.path.join(REPO, 'yaml_configs', relative_path)
    with open(path) as f:
        text = f.read()
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    edited = os.path.join(os.environ['DRIVER_TEST_TMP'], os.path.basename(path))
    with open(edited, 'w') as f:
        f.write(text)
    config = yaml_util.load_yaml_file(edited)
    import_dependencies(config.get('dependencies'))
    return config


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch):
    monkeypatch.setenv('DRIVER_TEST_TMP', str(tmp_path))


def set_value(config, dotted_key, value):
    *parents, last = dotted_key.split('.')
    for key in parents:
        config = config[key]
    assert last in config, dotted_key
    config[last] = value


def relocate(config, folder, teacher_ckpt=None, epochs=None):
    """What a user changes to run a shipped config elsewhere: paths and epochs."""
    models = config['models']
    student = models.get('student_model', models.get('model'))
    student['dst_ckpt'] = os.path.join(str(folder), 'student_best.pt')
    if 'best_checkpoints' in config['train']:
        config['train']['best_checkpoints']['dst_ckpt'] = student['dst_ckpt']
    if teacher_ckpt is not None:
        models['teacher_model']['src_ckpt'] = teacher_ckpt
    for key, value in (epochs or {}).items():
        set_value(config, key, value)
    return config


def state_of(model):
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def saved_model(path):
    return torch.load(path, weights_only=True, map_location='cpu')['model']


def random_ckpt(path, key, **kwargs):
    torch.manual_seed(0)
    torch.save({'model': get_model(key, **kwargs).state_dict()}, path)
    return str(path)


@pytest.fixture
def digits_teachers(tmp_path):
    return {'mlp256': random_ckpt(tmp_path / 'teacher.pt', 'mlp', input_dim=64, hidden_dims=[256, 256], num_classes=10),
            'mlp64': random_ckpt(tmp_path / 'ta.pt', 'mlp', input_dim=64, hidden_dims=[64], num_classes=10)}


def short_epochs(config):
    if 'stage1' in config['train']:  # Stage I holds tau_max = 10 levels
        return {'train.stage1.num_epochs': 10, 'train.stage2.num_epochs': 2}
    # the published Continuation-KD steps through T_max temperature levels, one epoch each at least
    terms = config['train']['criterion']['kwargs']['sub_terms'].values()
    return {'train.num_epochs': max([2] + [term['criterion']['kwargs'].get('max_temperature', 2) for term in terms
                                           if isinstance(term['criterion'].get('kwargs'), dict)])}


# Every config under the script's kind of driver; the multi-stage one also under the runner's kind.
DIGITS_RUNS = [(path, False) for path in DIGITS_CONFIGS] + [
    (path, True) for path in DIGITS_CONFIGS if path.startswith('digits/annealing_kd/')]


@pytest.mark.parametrize('relative_path, reports', DIGITS_RUNS,
                         ids=[f"{path}-{'driver' if reports else 'hook'}-validates" for path, reports in DIGITS_RUNS])
def test_every_digits_config_runs_in_the_image_script_order(relative_path, reports, digits_teachers, tmp_path):
    config = load(relative_path)
    teacher_name = os.path.basename(relative_path)[:-len('.yaml')].partition('_from_')[2] or None
    relocate(config, tmp_path / 'run', teacher_ckpt=digits_teachers.get(teacher_name), epochs=short_epochs(config))
    teacher_modes = []

    def on_epoch_start(box, epoch):
        if getattr(box, 'teacher_model', None) is not None:
            teacher_modes.append([module.training for module in box.teacher_model.modules()])

    teacher_before = None
    if teacher_name:
        teacher_before = saved_model(digits_teachers[teacher_name])
    result = run_like_image_script(config, on_epoch_start=on_epoch_start, report_validation=reports)
    final = saved_model(tmp_path / 'run' / 'student_best.pt')
    assert same_state(state_of(result['student']), final)
    assert 0 <= result['test'] <= 100
    if teacher_name:  # frozen and in eval mode in every epoch of every stage
        assert same_state(state_of(result['teacher']), teacher_before)
        assert len(teacher_modes) == result['box'].num_epochs and not any(any(modes) for modes in teacher_modes)
    if 'stage1' in config['train']:  # the final student is the best Stage-II checkpoint
        assert same_state(final, saved_model(tmp_path / 'run' / 'stage2_best.pt'))
        assert os.path.isfile(tmp_path / 'run' / 'stage1_best.pt')


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    """Tiny CIFAR-10 (36 training, 4 validation images) found through the configs' own root (no KD_DATA_ROOT)."""
    root = tmp_path / 'data'
    write_tiny_cifar10(root, train_per_class=4, test_per_class=1)
    monkeypatch.delenv('KD_DATA_ROOT', raising=False)
    monkeypatch.setenv('KD_VERIFY_MD5', '0')  # tiny files cannot match the official checksums
    monkeypatch.setenv('KD_DOWNLOAD', '0')
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of a few images: threads only add overhead on a shared CPU
    yield str(root)
    torch.set_num_threads(num_threads)


def load_cifar(relative_path, root, shrink_teacher=True):
    """A CIFAR config reading the tiny files through its ``root:`` kwarg; ResNet-110 / -20 built as ResNet-8."""
    config = load(relative_path, replace=[('root: ~/datasets', f'root: {root!r}')])
    assert len(config['datasets']['cifar10/train']) == 36 and len(config['datasets']['cifar10/val']) == 4
    teacher = config['models'].get('teacher_model')
    if teacher is not None and shrink_teacher and teacher['key'] in ('resnet110', 'resnet20'):
        teacher['key'] = 'resnet8'  # the same BatchNorm teacher at a fraction of the CPU time
    return config


# Scripted validation: Stage I (epochs 0-9) is best at epoch 3, not its last epoch; Stage II (10-12) is best at
# epoch 11 and never beats Stage I, so the script's own single best over both stages stays the Stage-I model.
SCRIPTED = [10.0, 20.0, 30.0, 70.0, 40.0, 50.0, 30.0, 20.0, 60.0, 65.0, 30.0, 45.0, 35.0]


@pytest.mark.parametrize('reports', [False, True], ids=['hook-validates', 'driver-validates'])
def test_algorithm1_under_the_image_script_order(reports, tiny_cifar, tmp_path, monkeypatch):
    config = load_cifar('cifar10/annealing_kd/resnet8_from_resnet110.yaml', tiny_cifar)
    teacher_ckpt = random_ckpt(tmp_path / 'teacher.pt', 'resnet8', num_classes=10)
    relocate(config, tmp_path / 'run', teacher_ckpt,
             {'train.stage1.num_epochs': 10, 'train.stage2.num_epochs': 3,
              'train.stage1.train_data_loader.kwargs.num_workers': 0,
              'train.stage1.val_data_loader.kwargs.num_workers': 0,
              'test.test_data_loader.kwargs.num_workers': 0})
    trained, entering = {}, {}
    hook_evaluations = []

    def validate(box, epoch, student):  # after the epoch's training: the weights it ends with
        trained[epoch] = state_of(plugins.stages.box_student(box))
        return SCRIPTED[epoch]

    def hook_evaluate(model, data_loader, device, metric, forward_proc=None):
        hook_evaluations.append(len(data_loader.dataset))
        return {'accuracy': SCRIPTED[len(hook_evaluations) - 1]}

    monkeypatch.setattr(plugins.stages, 'evaluate', hook_evaluate)
    result = run_like_image_script(
        config, validate=validate, report_validation=reports,
        on_epoch_start=lambda box, epoch: entering.__setitem__(epoch, state_of(plugins.stages.box_student(box))))
    run = tmp_path / 'run'
    # the hook evaluates the validation split itself only when the driver left no value on the box
    assert hook_evaluations == ([] if reports else [4] * 13)
    assert result['saved'] == [0, 1, 2, 3]  # the script's own best: Stage I only
    best_stage1 = saved_model(run / 'stage1_best.pt')
    assert same_state(best_stage1, trained[3])
    assert same_state(entering[10], best_stage1)  # Stage II starts from the best Stage-I checkpoint ...
    assert not same_state(entering[10], trained[9])  # ... not from the last Stage-I weights
    best_stage2 = saved_model(run / 'stage2_best.pt')
    assert same_state(best_stage2, trained[11])
    assert same_state(state_of(result['student']), best_stage2)  # the script's final reload: the best Stage II
    assert not same_state(best_stage2, best_stage1)
    assert same_state(state_of(result['teacher']), saved_model(teacher_ckpt))  # parameters and BN buffers
    assert result['box'].stage_checkpoints.results == [{'stage': 1, 'best_epoch': 3, 'best_val': 70.0},
                                                      {'stage': 2, 'best_epoch': 11, 'best_val': 45.0}]


def test_without_the_teacher_hook_the_teacher_drifts(tiny_cifar, tmp_path):
    """The control: torchdistill's default pre-epoch process leaves a BatchNorm teacher in training mode."""
    config = load_cifar('cifar10/kd/resnet8_from_resnet110.yaml', tiny_cifar)
    teacher_ckpt = random_ckpt(tmp_path / 'teacher.pt', 'resnet8', num_classes=10)
    relocate(config, tmp_path / 'run', teacher_ckpt, {'train.num_epochs': 1})
    for field in ('train_data_loader', 'val_data_loader'):
        config['train'][field]['kwargs']['num_workers'] = 0
    config['test']['test_data_loader']['kwargs']['num_workers'] = 0
    hooked = run_like_image_script(copy.deepcopy(config))
    assert same_state(state_of(hooked['teacher']), saved_model(teacher_ckpt))
    del config['train']['pre_epoch_process']
    unhooked = run_like_image_script(config)
    changed = [key for key, value in state_of(unhooked['teacher']).items()
               if not torch.equal(value, saved_model(teacher_ckpt)[key])]
    assert changed and all('running_' in key or 'num_batches_tracked' in key for key in changed)


CIFAR10_CONFIGS = sorted(os.path.relpath(path, os.path.join(REPO, 'yaml_configs'))
                         for path in glob.glob(os.path.join(REPO, 'yaml_configs', 'cifar10', '*', '*.yaml')))


@pytest.mark.parametrize('relative_path', CIFAR10_CONFIGS)
def test_every_cifar10_config_runs_in_the_image_script_order(relative_path, tiny_cifar, tmp_path):
    config = load_cifar(relative_path, tiny_cifar)
    teacher = config['models'].get('teacher_model')
    teacher_ckpt = random_ckpt(tmp_path / 'teacher.pt', teacher['key'], num_classes=10) if teacher else None
    multi_stage = 'stage1' in config['train']
    first = 'train.stage1' if multi_stage else 'train'
    # Stage I holds tau_max = 10 levels; Continuation-KD's T_max = 20 levels (and psi reaches 1 at 3/4 of the run)
    epochs = {'train.stage1.num_epochs': 10, 'train.stage2.num_epochs': 1} if multi_stage else \
        {'train.num_epochs': 20 if '/continuation_kd/' in relative_path else 1}
    epochs.update({f'{first}.train_data_loader.kwargs.num_workers': 0, f'{first}.val_data_loader.kwargs.num_workers': 0,
                   'test.test_data_loader.kwargs.num_workers': 0})
    relocate(config, tmp_path / 'run', teacher_ckpt, epochs)
    if config['models'].get('student_model', config['models'].get('model'))['key'] == 'plain_cnn2':
        # A test-only change: at lr 0.1 / 0.2 the 2-layer CNN diverges on these 36 random images (the loss
        # reaches NaN within 10 steps); the mechanism under test does not depend on the learning rate.
        for stage in [config['train']] if not multi_stage else [config['train']['stage1'], config['train']['stage2']]:
            stage['optimizer']['kwargs']['lr'] = 0.01
    # Random models may score 0 % on the 4 validation images, and the script saves only above 0: script it.
    result = run_like_image_script(config, validate=lambda box, epoch, student: 50.0 + epoch)
    assert same_state(state_of(result['student']), saved_model(tmp_path / 'run' / 'student_best.pt'))
    if teacher:
        assert same_state(state_of(result['teacher']), saved_model(teacher_ckpt))
    if multi_stage:
        assert same_state(state_of(result['student']), saved_model(tmp_path / 'run' / 'stage2_best.pt'))


def test_teacher_cache_engages_under_the_image_script_order(digits_teachers, tmp_path):
    """The cache as the README declares it for drivers other than the runner: with our pre-epoch process the
    teacher is in eval mode and runs in the first epoch only; with torchdistill's default it runs every step."""
    calls = {}
    for hooked in (True, False):
        config = relocate(load('digits/kd/mlp4_from_mlp256.yaml'), tmp_path / f'run{hooked}',
                          digits_teachers['mlp256'], {'train.num_epochs': 2})
        train = config['train']
        train['train_data_loader']['dataset_wrapper'] = {'key': 'TeacherCacheDatasetWrapper', 'kwargs': {}}
        train['teacher'] = {'forward_proc': 'forward_all', 'requires_grad': False, 'auxiliary_model_wrapper': {
            'key': 'CachedTeacherWrapper', 'kwargs': {'forward_proc': 'forward_batch_only', 'mode': 'memory'}}}
        if not hooked:
            del train['pre_epoch_process']
        counts = []

        def validate(box, epoch, student):
            assert isinstance(box.teacher_model, CachedTeacherWrapper)
            counts.append((box.teacher_model.teacher_calls, box.teacher_model.hits))
            return 50.0

        run_like_image_script(config, validate=validate)
        calls[hooked] = counts
    num_train = len(config['datasets']['digits/train'])
    batches = -(-num_train // config['train']['train_data_loader']['kwargs']['batch_size'])
    assert calls[True] == [(batches, 0), (0, num_train)]  # filled in epoch 0, served in epoch 1
    assert calls[False] == [(batches, 0), (batches, 0)]  # the teacher in training mode: never cached


def test_a_scheduled_loss_without_its_hook_fails_before_the_first_optimiser_step(digits_teachers, tmp_path):
    config = relocate(load('digits/annealing_kd/mlp4_from_mlp256.yaml'), tmp_path / 'run', digits_teachers['mlp256'],
                      short_epochs(load('digits/annealing_kd/mlp4_from_mlp256.yaml')))
    config['train']['stage1']['pre_epoch_process'] = 'keep_teacher_in_eval_mode'  # the teacher hook, no schedule
    steps = []

    def on_box(box):
        box.optimizer.register_step_pre_hook(lambda *args: steps.append(1))

    with pytest.raises((RuntimeError, ValueError), match="pre_epoch_process: 'advance_loss_schedules'"):
        run_like_image_script(config, on_box=on_box)
    assert steps == []


def test_a_teacher_trained_by_the_script_teaches_under_the_runner(digits_teachers, tmp_path):
    """The image script saves checkpoints with torchdistill's save_ckpt, which adds the command line (an
    argparse.Namespace) and the optimizer: the runner's weights-only loading accepts that file, nothing more."""
    import argparse
    import pickle

    import plugins.runner as runner
    from torchdistill.common.main_util import save_ckpt
    teacher = get_model('mlp', input_dim=64, hidden_dims=[256, 256], num_classes=10)
    teacher.load_state_dict(saved_model(digits_teachers['mlp256']))
    optimizer = torch.optim.SGD(teacher.parameters(), lr=0.1)
    script_ckpt = str(tmp_path / 'script_teacher.pt')
    save_ckpt(teacher, optimizer, None, 93.0, argparse.Namespace(config='x.yaml', device='cpu', seed=0), script_ckpt)
    config = os.path.join(REPO, 'yaml_configs', 'digits', 'kd', 'mlp4_from_mlp256.yaml')
    result = runner.run_config(config, output_dir=str(tmp_path / 'run'), teacher_ckpt=script_ckpt,
                               overrides={'train.num_epochs': 1}, show_progress=False)
    assert result['teacher_params'] == sum(p.numel() for p in teacher.parameters())

    class Payload:  # anything else in a checkpoint is still refused
        def __reduce__(self):
            return print, ('ran',)

    torch.save({'model': teacher.state_dict(), 'args': Payload()}, tmp_path / 'payload.pt', pickle_module=pickle)
    from plugins.errors import CheckpointError
    with pytest.raises(CheckpointError, match='holds Python objects other than tensors'):
        runner.run_config(config, output_dir=str(tmp_path / 'run2'), teacher_ckpt=str(tmp_path / 'payload.pt'),
                          overrides={'train.num_epochs': 1}, show_progress=False)
