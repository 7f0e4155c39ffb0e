"""The runner under ``torchrun --standalone --nproc_per_node=2`` on CPU (gloo) against one process.

The two-rank run uses half the single-process batch and non-shuffled sampling, so rank 0's batch plus
rank 1's batch is the single-process batch and DDP's gradient average is the single-process gradient:
the weights must agree to float rounding. The validation and test splits have odd sizes, so
DistributedSampler pads them, and the metrics must still equal the single-process ones exactly.

This file is also the per-rank worker (``python test_distributed.py --worker ...``): it runs the real
runner and saves what each rank ended with into a probe folder outside the run's output folder.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_SIZE, VAL_SIZE, TEST_SIZE = 256, 301, 287  # 301 and 287: not divisible by the world size 2
GLOBAL_BATCH = 32

CONFIG = '''
dependencies:
  - name: 'plugins'
datasets:
  digits/train: !import_call
    key: 'torch.utils.data.Subset'
    init:
      kwargs:
        dataset: !import_call {key: 'plugins.datasets.digits.digits_split', init: {kwargs: {split: 'train'}}}
        indices: !import_call {key: 'builtins.range', init: {args: [TRAIN_SIZE]}}
  digits/val: !import_call
    key: 'torch.utils.data.Subset'
    init:
      kwargs:
        dataset: !import_call {key: 'plugins.datasets.digits.digits_split', init: {kwargs: {split: 'val'}}}
        indices: !import_call {key: 'builtins.range', init: {args: [VAL_SIZE]}}
  digits/test: !import_call
    key: 'torch.utils.data.Subset'
    init:
      kwargs:
        dataset: !import_call {key: 'plugins.datasets.digits.digits_split', init: {kwargs: {split: 'test'}}}
        indices: !import_call {key: 'builtins.range', init: {args: [TEST_SIZE]}}
models:
  teacher_model:
    key: 'mlp'
    kwargs: {input_dim: 64, hidden_dims: [16], num_classes: 10}
    src_ckpt: TEACHER_CKPT
  student_model:
    key: 'mlp'
    kwargs: {input_dim: 64, hidden_dims: [16], num_classes: 10}
    dst_ckpt: &dst_ckpt 'runs/ddp/student_best.pt'
train:
  best_checkpoints: {dst_ckpt: *dst_ckpt}
  stage1:
    num_epochs: 2
    pre_epoch_process: 'advance_loss_schedules'
    post_epoch_process: 'keep_best_stage_checkpoints'
    train_data_loader:
      dataset_id: 'digits/train'
      sampler: {class_or_func: !import_get {key: 'torch.utils.data.SequentialSampler'}, kwargs: }
      kwargs: {batch_size: 32, num_workers: 0}
    val_data_loader:
      dataset_id: 'digits/val'
      sampler: {class_or_func: !import_get {key: 'torch.utils.data.SequentialSampler'}, kwargs: }
      kwargs: {batch_size: 64, num_workers: 0}
    teacher:
      requires_grad: False
      forward_proc: 'forward_batch_only'
      forward_hook: {input: [], output: ['2']}
    student:
      requires_grad: True
      forward_proc: 'forward_batch_only'
      forward_hook: {input: [], output: ['2']}
    optimizer: {key: 'SGD', kwargs: {lr: 0.2, momentum: 0.9}}
    criterion:
      key: 'WeightedSumLoss'
      kwargs:
        sub_terms:
          annealing_kd:
            criterion:
              key: 'AnnealingKDLoss'
              kwargs: {student_module_path: '.', student_module_io: 'output', teacher_module_path: '.',
                       teacher_module_io: 'output', max_temperature: 2, annealing: 'linear'}
            weight: 1.0
          hidden:  # read through torchdistill's forward hooks on the (DDP-wrapped) student
            criterion: {key: 'MSELoss', kwargs: {reduction: 'mean'}}
            criterion_wrapper:
              key: 'SimpleLossWrapper'
              kwargs: {input: {is_from_teacher: False, module_path: '2', io: 'output'},
                       target: {is_from_teacher: True, module_path: '2', io: 'output'}}
            weight: 0.5
  stage2:
    num_epochs: 1
    pre_epoch_process: 'keep_teacher_in_eval_mode'
    post_epoch_process: 'keep_best_stage_checkpoints'
    teacher: {requires_grad: False, forward_proc: 'forward_batch_only'}
    student: {requires_grad: True, forward_proc: 'forward_batch_only'}
    optimizer: {key: 'SGD', kwargs: {lr: 0.2, momentum: 0.9}}
    criterion:
      key: 'WeightedSumLoss'
      kwargs:
        sub_terms:
          ce:
            criterion: {key: 'CrossEntropyLoss', kwargs: {reduction: 'mean'}}
            criterion_wrapper:
              key: 'SimpleLossWrapper'
              kwargs: {input: {is_from_teacher: False, module_path: '.', io: 'output'}, target: {uses_label: True}}
            weight: 1.0
test:
  test_data_loader:
    dataset_id: 'digits/test'
    sampler: {class_or_func: !import_get {key: 'torch.utils.data.SequentialSampler'}, kwargs: }
    kwargs: {batch_size: 64, num_workers: 0}
'''.replace('TRAIN_SIZE', str(TRAIN_SIZE)).replace('VAL_SIZE', str(VAL_SIZE)).replace('TEST_SIZE', str(TEST_SIZE))


FAIL_TIMEOUT_S = 60  # collective timeout of the job whose rank 1 raises


# ----------------------------------------------------------------------------------------------------------
# What one process (a rank, or the single-process reference) does and ends with.
# ----------------------------------------------------------------------------------------------------------

def _record_writes(output_dir, writes):
    """Audit hook: every file this process opens for writing (or renames to) inside ``output_dir``."""
    root = os.path.realpath(output_dir)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def relative(path):
        if not isinstance(path, (str, bytes, os.PathLike)):
            return None
        path = os.path.realpath(os.fsdecode(path))
        return os.path.relpath(path, root) if path.startswith(root + os.sep) else None

    def hook(event, args):
        if event == 'open' and isinstance(args[2], int) and args[2] & write_flags and relative(args[0]):
            writes.append(relative(args[0]))
        elif event == 'os.rename' and relative(args[1]):
            writes.append(relative(args[1]))
    sys.addaudithook(hook)


def _probe_evaluation(config_path, teacher_ckpt):
    """The teacher's logits, labels and accuracy on the val and test splits, as ``evaluate`` returns them.

    The loaders come from torchdistill's ``build_data_loader`` (a padding DistributedSampler under
    torchrun) and the teacher's weights are the same in every process.
    """
    import torch.distributed as dist
    from torchdistill.datasets.util import build_data_loader

    import plugins.runner as runner
    from plugins.evaluation import Metric, evaluate, get_metric
    config = runner.load_config(config_path)
    teacher = runner.build_model(config['models']['teacher_model'], torch.device('cpu'), ckpt=teacher_ckpt)
    keep = Metric('probe', lambda outputs, targets: {'outputs': outputs, 'targets': targets}, primary='outputs')
    probes = {}
    for split, loader_config in (('val', config['train']['stage1']['val_data_loader']),
                                 ('test', config['test']['test_data_loader'])):
        loader = build_data_loader(config['datasets'][loader_config['dataset_id']], loader_config,
                                   dist.is_initialized())
        probes[split] = evaluate(teacher, loader, torch.device('cpu'), keep)
        probes[split].update(evaluate(teacher, loader, torch.device('cpu'), get_metric('accuracy')))
    return probes


def run_and_probe(config_path, teacher_ckpt, output_dir, batch_size):
    """Trains the config with the real runner; returns the final student weights, the result and probes."""
    import plugins.runner as runner
    students, build_model = [], runner.build_model

    def capture(*args, **kwargs):  # the runner builds the student first
        students.append(build_model(*args, **kwargs))
        return students[-1]
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like the ranks (OMP_NUM_THREADS=1): 2 cores are shared with them
    runner.build_model = capture
    try:
        result = runner.run_config(config_path, seed=0, output_dir=output_dir, teacher_ckpt=teacher_ckpt,
                                   overrides={'train.stage1.train_data_loader.kwargs.batch_size': batch_size},
                                   show_progress=False)
    finally:
        runner.build_model = build_model
        torch.set_num_threads(num_threads)
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
    return {'student': {k: v.clone() for k, v in students[0].state_dict().items()}, 'result': result,
            'probes': _probe_evaluation(config_path, teacher_ckpt), 'world_size': int(os.environ.get('WORLD_SIZE', 1))}


def run_worker(argv):
    """One torchrun rank: trains (or fails on purpose) and saves what it ended with under --probe-dir."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--config', required=True)
    parser.add_argument('--teacher-ckpt', required=True)
    parser.add_argument('--output-dir', required=True)
    parser.add_argument('--probe-dir', required=True)
    parser.add_argument('--batch-size', type=int, required=True)
    parser.add_argument('--fail', action='store_true', help='rank 1 raises in its second epoch')
    args = parser.parse_args(argv)
    import plugins.distributed as dist_util
    import plugins.runner as runner
    rank = int(os.environ['RANK'])
    os.makedirs(args.probe_dir, exist_ok=True)
    if not args.fail:
        writes = []
        _record_writes(args.output_dir, writes)
        probe = run_and_probe(args.config, args.teacher_ckpt, args.output_dir, args.batch_size)
        torch.save(dict(probe, writes=writes), os.path.join(args.probe_dir, f'rank{rank}.pt'))
        dist_util.cleanup()
        return
    if rank == 1:  # fails in its second epoch, while rank 0 trains on and waits for it in a collective
        train_one_epoch = runner._train_one_epoch

        def failing(box, device, epoch, show_progress):
            if epoch == 1:
                with open(os.path.join(args.probe_dir, 'failed_at'), 'w') as file:
                    file.write(repr(time.time()))
                raise RuntimeError('injected failure on rank 1')
            return train_one_epoch(box, device, epoch, show_progress)
        runner._train_one_epoch = failing
    # the command-line entry point, with its error handling
    runner.main(['--config', args.config, '--output-dir', args.output_dir, '--teacher-ckpt', args.teacher_ckpt,
                 '--set', f'train.stage1.train_data_loader.kwargs.batch_size={args.batch_size}'])


# ----------------------------------------------------------------------------------------------------------
# Tests: both torchrun jobs start at once, then the single-process reference runs in the test process.
# ----------------------------------------------------------------------------------------------------------

def _launch(tmp_path, name, timeout_s, extra=()):
    """``torchrun --standalone`` (one node, a free port) with two gloo ranks, each with half the batch.

    A thread notes when the job ends (the test process is busy with the reference run meanwhile).
    """
    env = dict(os.environ, OMP_NUM_THREADS='1', PLUGINS_DIST_TIMEOUT_S=str(timeout_s),
               PYTHONPATH=os.pathsep.join([REPO_ROOT, os.environ.get('PYTHONPATH', '')]))
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        env.pop(key, None)
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', __file__,
               '--worker', '--config', str(tmp_path / 'config.yaml'), '--teacher-ckpt', str(tmp_path / 'teacher.pt'),
               '--output-dir', str(tmp_path / name), '--probe-dir', str(tmp_path / f'{name}_probe'),
               '--batch-size', str(GLOBAL_BATCH // 2), *extra]
    job = {'log': tmp_path / f'{name}.log'}
    with open(job['log'], 'w') as log:  # a file, not a pipe: nothing blocks on a full pipe
        job['process'] = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
    job['waiter'] = threading.Thread(target=lambda: job.update(returncode=job['process'].wait(), ended=time.time()),
                                     daemon=True)
    job['waiter'].start()
    return job


def _finish(job, limit_s=300):
    job['waiter'].join(limit_s)
    if job['waiter'].is_alive():
        _kill(job)
        pytest.fail(f'torchrun did not end within {limit_s} s:\n{job["log"].read_text()[-3000:]}')
    return {'returncode': job['returncode'], 'ended': job['ended'], 'output': job['log'].read_text()}


def _kill(job):
    """Kills the job's agent and ranks (its own process group)."""
    if job['process'].poll() is None:
        os.killpg(job['process'].pid, signal.SIGKILL)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    from plugins.models.mlp import mlp
    tmp_path = tmp_path_factory.mktemp('distributed')
    torch.manual_seed(1)
    torch.save({'model': mlp(64, [16], 10).state_dict()}, tmp_path / 'teacher.pt')
    (tmp_path / 'config.yaml').write_text(CONFIG.replace('TEACHER_CKPT', repr(str(tmp_path / 'teacher.pt'))))
    jobs = {'ddp': _launch(tmp_path, 'ddp', 120),
            'raises': _launch(tmp_path, 'raises', FAIL_TIMEOUT_S, ['--fail'])}
    try:
        single = run_and_probe(str(tmp_path / 'config.yaml'), str(tmp_path / 'teacher.pt'), str(tmp_path / 'single'),
                               GLOBAL_BATCH)
        finished = {name: _finish(job) for name, job in jobs.items()}
    finally:
        for job in jobs.values():
            _kill(job)
    return {'dir': tmp_path, 'single': single, 'jobs': finished}


@pytest.fixture(scope='module')
def ranks(runs):
    job = runs['jobs']['ddp']
    assert job['returncode'] == 0, job['output'][-3000:]
    return [torch.load(runs['dir'] / 'ddp_probe' / f'rank{rank}.pt', weights_only=False) for rank in (0, 1)]


def test_two_ranks_train_like_one_process_with_the_global_batch(runs, ranks):
    single = runs['single']
    assert [rank['world_size'] for rank in ranks] == [2, 2] and single['world_size'] == 1
    max_diff = max((ranks[0]['student'][k] - single['student'][k]).abs().max().item() for k in single['student'])
    print(f'\nmax |theta(2 ranks) - theta(1 process)| = {max_diff:.3e}')
    assert max_diff < 1e-5
    for key, value in ranks[0]['student'].items():  # every rank ends with the same weights
        assert torch.equal(value, ranks[1]['student'][key])
    history = single['result']['history']
    assert abs(history[-1]['train_loss'] - history[0]['train_loss']) > 1e-2  # it did train
    # the per-epoch training loss is averaged over both ranks' samples, not over rank 0's half
    for rank in ranks:
        assert [h['train_loss'] for h in rank['result']['history']] == \
            pytest.approx([h['train_loss'] for h in history], abs=1e-5)
        assert rank['result']['stages'] == single['result']['stages']
    # Algorithm 1: the stage-I best weights rank 0 wrote match the single process's
    best1 = {name: torch.load(runs['dir'] / name / 'stage1_best.pt')['model'] for name in ('single', 'ddp')}
    assert max((best1['ddp'][k] - best1['single'][k]).abs().max().item() for k in best1['single']) < 1e-5


def test_distributed_metrics_equal_single_process_on_splits_the_ranks_cannot_share_evenly(runs, ranks):
    single = runs['single']
    for split, size in (('val', VAL_SIZE), ('test', TEST_SIZE)):
        reference = single['probes'][split]
        assert len(reference['targets']) == size
        for rank in ranks:  # every sample once, in dataset order, although the sampler padded the shards
            assert torch.equal(rank['probes'][split]['targets'], reference['targets'])
            assert torch.allclose(rank['probes'][split]['outputs'], reference['outputs'], atol=1e-6)
            assert rank['probes'][split]['accuracy'] == reference['accuracy']
    for rank in ranks:  # the runner's own figures
        assert rank['result']['test'] == single['result']['test']
        assert [h['val'] for h in rank['result']['history']] == [h['val'] for h in single['result']['history']]


def test_only_rank_zero_writes_results_checkpoints_and_logs(runs, ranks):
    assert ranks[1]['writes'] == []
    # an atomic write goes to '.NAME.XXXXXXXX.tmp' first, then is renamed to NAME
    written = {name[1:].rsplit('.', 2)[0] if name.endswith('.tmp') else name for name in ranks[0]['writes']}
    expected = {'result.json', 'stage1_best.pt', 'stage2_best.pt', 'student_best.pt', 'train.log'}
    assert written == expected
    assert {name for name in os.listdir(runs['dir'] / 'ddp')} == expected
    assert json.loads((runs['dir'] / 'ddp' / 'result.json').read_text())['world_size'] == 2


def test_annealing_temperature_schedule_is_the_same_on_every_rank(runs, ranks):
    schedules = [[h['schedule'] for h in run['result']['history']] for run in [runs['single'], *ranks]]
    assert schedules[1] == schedules[0] and schedules[2] == schedules[0]
    # tau_max = 2 over the two stage-I epochs: T = 2 then 1; stage II has no scheduled loss
    assert [s.get('AnnealingKDLoss', {}).get('T') for s in schedules[0]] == [2, 1, None]


def test_a_rank_that_raises_ends_the_job_with_an_error_at_once(runs):
    job = runs['jobs']['raises']
    failed_at = float((runs['dir'] / 'raises_probe' / 'failed_at').read_text())
    print(f'\nrank 1 raised: torchrun exited {job["returncode"]} {job["ended"] - failed_at:.1f} s later')
    assert job['returncode'] != 0
    assert 'injected failure on rank 1' in job['output']
    # torchrun stops rank 0, blocked in a collective, without waiting for the collective timeout
    assert job['ended'] - failed_at < FAIL_TIMEOUT_S
    assert not (runs['dir'] / 'raises' / 'result.json').exists()


def test_a_rank_that_never_arrives_makes_the_others_fail_after_the_timeout(monkeypatch):
    """Where nothing kills the waiting ranks (another node's rank hangs), the collective timeout does."""
    import torch.distributed as dist

    from plugins.distributed import TIMEOUT_ENV, init_distributed
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK='0', WORLD_SIZE='2',
                           LOCAL_RANK='0', **{TIMEOUT_ENV: '1'}).items():
        monkeypatch.setenv(key, value)
    start = time.perf_counter()
    with pytest.raises(Exception, match='[Tt]imed out'):  # rank 1 never joins
        init_distributed(torch.device('cpu'))
    assert 1 <= time.perf_counter() - start < 20
    assert not dist.is_initialized()
    monkeypatch.setenv(TIMEOUT_ENV, '0')
    with pytest.raises(ValueError, match=TIMEOUT_ENV):
        init_distributed(torch.device('cpu'))


def _sharded_loader(size=10, **sampler_kwargs):
    """What torchdistill builds under torchrun: a DistributedSampler given the config's sampler kwargs."""
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler
    dataset = TensorDataset(torch.arange(size))
    sampler = DistributedSampler(dataset, num_replicas=2, rank=0, **sampler_kwargs)
    return DataLoader(dataset, sampler=sampler, batch_size=size)


def test_the_train_sampler_follows_the_configured_sampler_and_the_run_seed():
    from torch.utils.data import RandomSampler, SequentialSampler

    from plugins.distributed import align_train_sampler
    order = lambda loader: next(iter(loader))[0].tolist()
    loader = _sharded_loader()  # torchdistill's DistributedSampler: shuffle=True, seed=0 whatever the config
    align_train_sampler(loader, {'sampler': {'class_or_func': SequentialSampler, 'kwargs': None}}, seed=3)
    assert order(loader) == [0, 2, 4, 6, 8]
    orders = {}
    for seed in (0, 1, 1):
        loader = _sharded_loader()
        align_train_sampler(loader, {'sampler': {'class_or_func': RandomSampler, 'kwargs': None}}, seed=seed)
        orders.setdefault(seed, []).append(order(loader))
    assert orders[1][0] == orders[1][1] and orders[0][0] != orders[1][0]
    assert sorted(orders[1][0]) != orders[1][0]  # shuffled
    loader = _sharded_loader(seed=7)  # a seed in the sampler kwargs wins over the run seed
    align_train_sampler(loader, {'sampler': {'class_or_func': RandomSampler, 'kwargs': {'seed': 7}}}, seed=3)
    assert loader.sampler.seed == 7 and loader.sampler.shuffle is True


def test_a_stage_without_a_training_loader_keeps_the_previous_one():
    from plugins.distributed import train_loader_config
    stages = {'stage1': {'train_data_loader': {'dataset_id': 'a'}}, 'stage2': {},
              'stage3': {'train_data_loader': {'dataset_id': 'c'}}}
    assert [train_loader_config(stages, n)['dataset_id'] for n in (1, 2, 3)] == ['a', 'a', 'c']
    assert train_loader_config({'train_data_loader': {'dataset_id': 'x'}})['dataset_id'] == 'x'


if __name__ == '__main__':
    if sys.argv[1:2] == ['--worker']:
        run_worker(sys.argv[2:])
