"""Every bad input of issue 12 stops the runner before training with one line naming the field or file."""
import json
import os

import pytest
import torch

import plugins.runner as runner
from plugins.config_checks import parse_value
from plugins.errors import ConfigError
from runner_fixtures import TWO_STAGE, write_config

DIGITS_KD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         'yaml_configs', 'digits', 'kd', 'mlp4_from_mlp256.yaml')


@pytest.fixture
def no_training(monkeypatch):
    monkeypatch.setattr(runner, '_train_one_epoch', lambda *args: pytest.fail('training started'))


def edited(old, new):
    assert old in TWO_STAGE, old
    return TWO_STAGE.replace(old, new, 1)


BAD_TEXTS = [
    ('empty', '', "config.yaml is empty: a config is a mapping with the sections ['datasets', 'models', 'train', "
                  "'test']"),
    ('list', '- datasets\n- models\n', 'config.yaml holds a list at the top level: a config is a mapping'),
    ('syntax', 'datasets:\n  a: [1, 2\nmodels: {}\n', "config.yaml: not valid YAML: expected ',' or ']', but got ':' "
                                                      "at line 3, column 7"),
    ('unknown split', edited("split: 'train'", "split: 'tain'"),
     "config.yaml: datasets.blobs/train (line 5): !import_call 'runner_fixtures.make_blobs' failed: KeyError: 'tain'"),
    ('model key', edited("key: 'mlp'", "key: 'mpl'"),
     "models.teacher_model.key: unknown model 'mpl'; did you mean 'mlp'? accepted: ["),
    ('model kwarg', edited('hidden_dims: [4]', 'hiden_dims: [4]'),
     "models.student_model.kwargs: unknown argument(s) ['hiden_dims']; accepted: ['input_dim', 'hidden_dims', "
     "'num_classes', 'activation', 'dropout']"),
    ('optimizer', edited("key: 'SGD'", "key: 'SDG'"),
     "train.stage1.optimizer.key: unknown optimizer 'SDG'; did you mean 'SGD'? accepted: ['ASGD', "),
    ('optimizer kwarg', edited('momentum: 0.9', 'momentun: 0.9'),
     "train.stage1.optimizer.kwargs: unknown argument(s) ['momentun']; accepted: ['lr', 'momentum', "),
    ('lr string', edited('lr: 0.1,', 'lr: 1e-3,'),
     "train.stage1.optimizer.kwargs.lr must be a finite number >= 0, got '1e-3' (a string: YAML 1.1 reads 1e-3 as "
     "text, write 1.0e-3)"),
    ('lr negative', edited('lr: 0.1,', 'lr: -0.1,'), 'train.stage1.optimizer.kwargs.lr must be a finite number >= 0, '
                                                     'got -0.1'),
    ('batch size 0', edited('batch_size: 16', 'batch_size: 0'),
     'train.stage1.train_data_loader.kwargs.batch_size must be an integer >= 1, got 0'),
    ('batch size string', edited('batch_size: 16', "batch_size: 'sixteen'"),
     "train.stage1.train_data_loader.kwargs.batch_size must be an integer >= 1, got 'sixteen'"),
    ('metric', TWO_STAGE + "evaluation: {metric: 'acc'}\n",
     "evaluation.metric must be one of ['accuracy', 'glue_cola', 'glue_mrpc', 'glue_qqp', 'glue_stsb', 'mse'], "
     "got 'acc'"),
    ('scheduler', edited("optimizer: {key: 'SGD', kwargs: {lr: 0.1, momentum: 0.9}}",
                         "optimizer: {key: 'SGD', kwargs: {lr: 0.1, momentum: 0.9}}\n"
                         "    scheduler: {key: 'StepLRR', kwargs: {step_size: 1}}"),
     "train.stage1.scheduler.key: unknown scheduler 'StepLRR'; did you mean 'StepLR'?"),
    # torchdistill registers every name of torch.optim.lr_scheduler; those that build no scheduler are refused
    ('scheduler not a scheduler', edited("optimizer: {key: 'SGD', kwargs: {lr: 0.1, momentum: 0.9}}",
                                         "optimizer: {key: 'SGD', kwargs: {lr: 0.1, momentum: 0.9}}\n"
                                         "    scheduler: {key: 'Counter', kwargs: {}}"),
     "train.stage1.scheduler.key: unknown scheduler 'Counter'; accepted: ['ChainedScheduler', 'ConstantLR', "),
    ('optimizer base class', edited("key: 'SGD'", "key: 'Optimizer'"),
     "train.stage1.optimizer.key: unknown optimizer 'Optimizer'; accepted: ['ASGD', "),
    ('student checkpoint', edited('hidden_dims: [4], num_classes: 3}', "hidden_dims: [4], num_classes: 3}\n"
                                                                     "    src_ckpt: 'nowhere.pt'"),
     "models.student_model.src_ckpt: no file at 'nowhere.pt'"),
    ('no test section', TWO_STAGE[:TWO_STAGE.index('\ntest:')] + '\n',
     "the config has no 'test' section (required: ['datasets', 'models', 'train', 'test'])"),
]


@pytest.mark.parametrize('case, text, message', BAD_TEXTS, ids=[case for case, _, _ in BAD_TEXTS])
def test_bad_configs_are_named_before_training(tmp_path, teacher_ckpt, no_training, case, text, message):
    path = tmp_path / 'config.yaml'
    path.write_text(text.replace('TEACHER_CKPT', repr(teacher_ckpt)))
    with pytest.raises(ConfigError) as error:
        runner.run_config(str(path), output_dir=str(tmp_path / 'run'))
    assert message in str(error.value) and '\n' not in str(error.value)
    assert not os.path.exists(tmp_path / 'run' / 'result.json')


def test_an_unknown_data_set_split_lists_the_accepted_splits(tmp_path):
    path = tmp_path / 'digits.yaml'
    path.write_text(open(DIGITS_KD).read().replace("split: 'val'", "split: 'valid'"))
    with pytest.raises(ConfigError) as error:
        runner.load_config(str(path))
    assert str(error.value) == (f"{path}: datasets.digits/val (line 14): !import_call "
                                f"'plugins.datasets.digits.digits_split' failed: ValueError: split must be one of "
                                f"['train', 'val', 'test'], got 'valid'")


@pytest.mark.parametrize('seed', [-1, 2 ** 32, 1.5])
def test_seeds_outside_what_the_generators_accept_are_named(tmp_path, teacher_ckpt, no_training, seed):
    with pytest.raises(ConfigError, match=rf'--seed must be an integer in \[0, 4294967295\], got {seed}'):
        runner.run_config(write_config(tmp_path, teacher_ckpt), seed=seed, output_dir=str(tmp_path / 'run'))
    assert not os.path.exists(tmp_path / 'run')


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU')
def test_cuda_without_a_gpu_is_named(tmp_path, teacher_ckpt, no_training):
    with pytest.raises(ConfigError, match=r'--device cuda: no CUDA GPU is available on this machine'):
        runner.run_config(write_config(tmp_path, teacher_ckpt), device='cuda', output_dir=str(tmp_path / 'run'))
    with pytest.raises(ConfigError, match=r"--device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        runner.run_config(write_config(tmp_path, teacher_ckpt), device='gpu', output_dir=str(tmp_path / 'run'))


def test_output_paths_that_are_files_are_named(tmp_path, teacher_ckpt, no_training):
    blocker = tmp_path / 'a_file'
    blocker.write_text('keep me')
    with pytest.raises(ConfigError, match=rf"--output-dir: '{blocker}' is a file, not a directory"):
        runner.run_config(write_config(tmp_path, teacher_ckpt), output_dir=str(blocker))
    with pytest.raises(ConfigError, match=rf"--output-dir: '{blocker}/run' cannot be created: '{blocker}' is a file"):
        runner.run_config(write_config(tmp_path, teacher_ckpt), output_dir=str(blocker / 'run'))
    with pytest.raises(ConfigError, match=rf"teacher_cache.cache_dir: '{blocker}' is a file, not a directory"):
        runner.run_config(write_config(tmp_path, teacher_ckpt), output_dir=str(tmp_path / 'run'),
                          overrides={'teacher_cache.mode': 'disk', 'teacher_cache.cache_dir': str(blocker)})
    with pytest.raises(ConfigError, match=r"--log-file: '.*' is a directory"):
        runner.run_config(write_config(tmp_path, teacher_ckpt), output_dir=str(tmp_path / 'run'), log_file=str(tmp_path))
    assert blocker.read_text() == 'keep me'


def test_cli_errors_are_one_line_without_a_traceback(tmp_path, teacher_ckpt):
    config = write_config(tmp_path, teacher_ckpt)
    for argv, message in ((['--seed', '-1'], 'config error: --seed must be an integer in [0, 4294967295], got -1'),
                          (['--seed', '4294967296'], 'config error: --seed must be an integer in [0, 4294967295]'),
                          (['--output-dir', teacher_ckpt], f"config error: --output-dir: '{teacher_ckpt}' is a file")):
        with pytest.raises(SystemExit) as exit_info:
            runner.main(['--config', config] + argv + ([] if '--output-dir' in argv else
                                                       ['--output-dir', str(tmp_path / 'run')]))
        assert str(exit_info.value).startswith(message) and '\n' not in str(exit_info.value)


def test_set_values_are_parsed_as_a_user_means_them():
    assert parse_value('1e-3') == 0.001 and isinstance(parse_value('1e-3'), float)
    assert parse_value('5') == 5 and isinstance(parse_value('5'), int)
    assert parse_value('-2.5E2') == -250.0
    assert parse_value('true') is True and parse_value('null') is None and parse_value('off') is False
    assert parse_value('[1, 2]') == [1, 2] and parse_value('{a: 1}') == {'a': 1}
    assert parse_value('adam') == 'adam' and parse_value('1e') == '1e' and parse_value('[1,') == '[1,'


def test_set_lr_1e_minus_3_trains_with_that_float(tmp_path, teacher_ckpt, capsys):
    runner.main(['--config', write_config(tmp_path, teacher_ckpt), '--output-dir', str(tmp_path / 'run'),
                 '--set', 'train.stage1.optimizer.kwargs.lr=1e-3', '--set', 'train.stage2.num_epochs=1'])
    history = json.loads((tmp_path / 'run' / 'result.json').read_text())['history']
    assert [entry['lr'] for entry in history if entry['stage'] == 1] == [0.001] * 4
    assert 'test accuracy' in capsys.readouterr().out
