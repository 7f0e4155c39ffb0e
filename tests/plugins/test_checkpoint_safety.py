"""Checkpoints are untrusted files: loaded with weights_only=True, checked against the model, errors name the file."""
import errno
import os

import pytest
import torch

import plugins.runner as runner
from benchmarks import sinusoid_figure
from plugins import atomic_files
from plugins.atomic_files import atomic_write_bytes
from plugins.checkpoint import load_checkpoint, load_model_weights, verify_checkpoint
from plugins.errors import CheckpointError, OutputWriteError
from plugins.models.mlp import mlp
from runner_fixtures import write_config


class Payload:
    """Unpickling this with weights_only=False would create ``path`` (a stand-in for any shell command)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def bad_checkpoints(tmp_path, good):
    data = open(good, 'rb').read()
    files = {'truncated': data[:len(data) // 2], 'empty': b'', 'text': b'not a checkpoint\n'}
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / f'{name}.pt'
        paths[name].write_bytes(content)
    paths['wrong_architecture'] = tmp_path / 'wide.pt'
    torch.save({'model': mlp(8, [64], 3).state_dict()}, paths['wrong_architecture'])
    paths['payload'] = tmp_path / 'payload.pt'
    torch.save({'model': Payload(str(tmp_path / 'PAYLOAD_RAN'))}, paths['payload'])
    paths['no_weights'] = tmp_path / 'numbers.pt'
    torch.save({'model': {'best': 1.0}}, paths['no_weights'])
    return {name: str(path) for name, path in paths.items()}


EXPECTED = {
    'truncated': 'is not a complete PyTorch checkpoint (truncated, damaged or another kind of file',
    'empty': '(0 bytes) is not a complete PyTorch checkpoint',
    'text': 'is not a complete PyTorch checkpoint',
    'wrong_architecture': "does not fit Sequential (another architecture or model kwargs?): shape of 1.bias (64,) "
                          "(model: (32,))",
    'payload': 'holds Python objects other than tensors and plain data, which are never loaded',
    'no_weights': "holds no model weights (expected {'model': state_dict} or a state dict of named tensors",
}


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_a_bad_teacher_checkpoint_stops_the_run_before_training_and_names_the_file(tmp_path, teacher_ckpt,
                                                                                   monkeypatch, name):
    bad = bad_checkpoints(tmp_path, teacher_ckpt)[name]
    monkeypatch.setattr(runner, '_train_one_epoch', lambda *args: pytest.fail('training started'))
    with pytest.raises(CheckpointError) as error:
        runner.run_config(write_config(tmp_path, bad), output_dir=str(tmp_path / 'run'))
    message = str(error.value)
    assert message.startswith(f'models.teacher_model.src_ckpt: {bad!r}') and EXPECTED[name] in message
    assert '\n' not in message
    assert not (tmp_path / 'PAYLOAD_RAN').exists()  # the payload never ran
    with pytest.raises(CheckpointError, match=r'models\.teacher_model checkpoint: '):  # the --teacher-ckpt path
        runner.run_config(write_config(tmp_path, teacher_ckpt), output_dir=str(tmp_path / 'run'), teacher_ckpt=bad)


def test_the_cli_prints_one_line_for_a_pickled_payload(tmp_path, teacher_ckpt, capsys):
    bad = bad_checkpoints(tmp_path, teacher_ckpt)['payload']
    with pytest.raises(SystemExit) as exit_info:
        runner.main(['--config', write_config(tmp_path, teacher_ckpt), '--teacher-ckpt', bad,
                     '--output-dir', str(tmp_path / 'run')])
    assert str(exit_info.value).startswith(f'error: models.teacher_model checkpoint: {bad!r} holds Python objects')
    assert 'GLOBAL posix.mkdir' in str(exit_info.value) and not (tmp_path / 'PAYLOAD_RAN').exists()


def test_every_checkpoint_read_of_a_run_is_weights_only(tmp_path, teacher_ckpt, monkeypatch):
    calls, real_load = [], torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', recording_load)
    import torchdistill.common.main_util as main_util
    monkeypatch.setattr(main_util, 'load_ckpt', lambda *args, **kwargs: pytest.fail('torchdistill load_ckpt used'))
    runner.run_config(write_config(tmp_path, teacher_ckpt), output_dir=str(tmp_path / 'run'), show_progress=False)
    assert len(calls) == 3 and all(calls)  # the teacher, the stage-1 reload and the final reload


def test_checkpoint_formats_and_errors_of_the_loader(tmp_path, teacher_ckpt):
    model = mlp(8, [32], 3)
    bare = tmp_path / 'bare.pt'
    torch.save(torch.load(teacher_ckpt)['model'], bare)  # a bare state dict is a checkpoint too
    load_model_weights(model, str(bare))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 torch.load(teacher_ckpt)['model'].values()))
    verify_checkpoint(teacher_ckpt)
    bad = bad_checkpoints(tmp_path, teacher_ckpt)
    with pytest.raises(CheckpointError, match='is not a complete PyTorch checkpoint'):
        verify_checkpoint(bad['truncated'])
    with pytest.raises(CheckpointError, match=r"stage: no file at '.*nowhere\.pt'"):
        load_checkpoint(str(tmp_path / 'nowhere.pt'), what='stage')
    with pytest.raises(CheckpointError, match='is not a file'):
        load_checkpoint(str(tmp_path), what='stage')
    with pytest.raises(CheckpointError, match=r'missing 5\.bias, 5\.weight; shape of 3\.bias \(3,\) '
                                              r'\(model: \(32,\)\)'):
        load_model_weights(mlp(8, [32, 32], 3), teacher_ckpt)


def test_the_figure_loads_its_inputs_weights_only(tmp_path, teacher_ckpt):
    bad = bad_checkpoints(tmp_path, teacher_ckpt)['payload']
    with pytest.raises(CheckpointError, match='figure 2 input'):
        sinusoid_figure._load_weights(bad)
    assert not (tmp_path / 'PAYLOAD_RAN').exists()
    assert set(sinusoid_figure._load_weights(teacher_ckpt)) == {'model'}


def test_a_failed_write_names_the_file_and_leaves_no_partial_file(tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'fsync', no_space)
    target = tmp_path / 'result.json'
    with pytest.raises(OutputWriteError) as error:
        atomic_write_bytes(target, b'{}')
    assert str(error.value) == (f'cannot write {target}: No space left on device; free space on that file system '
                                f'or write elsewhere')
    assert error.value.errno == errno.ENOSPC and os.listdir(tmp_path) == []


class _FullDisk:
    def write(self, data):
        raise OSError(errno.ENOSPC, 'No space left on device')

    def flush(self):
        pass


def test_a_write_error_hidden_by_the_serialiser_is_reported_as_the_write_error(tmp_path):
    # torch.save's zip writer turns the OSError of a write on a full disk into "RuntimeError: ... unexpected pos"
    # (tests/plugins/test_fault_regressions.py shows it on a real full tmpfs, where the machine allows mounting one)
    def serialiser(fp):
        fp.fp = _FullDisk()  # the temporary file's disk is full from here on
        try:
            fp.write(b'x' * 10)
        except OSError:
            raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 10') from None

    with pytest.raises(OutputWriteError, match=r"model\.pt: No space left on device; free space on that file system"):
        atomic_files._atomic_write(tmp_path / 'model.pt', serialiser)
    assert os.listdir(tmp_path) == []
