"""Runs a suite through the project runner: teachers and TAs once per seed (cached), then every student method.

The harness has no training loop: each run is ``plugins.runner.run_config`` on a YAML config. Order:
1. the teacher of each seed (``<output-dir>/cache/teacher-<hash>/seed<k>``), trained from its own config;
2. the teacher assistant of each seed, by KD from that seed's teacher (only when a selected method is TAKD);
3. every student method on every seed, with the checkpoint of its teacher role passed as ``teacher_ckpt``.
Cache directories are keyed by a hash of the config's bytes, the overrides and the upstream teacher's hash,
so a changed config retrains and an unchanged one is reused. Each finished run adds a line to ``runs.jsonl``
(atomic rewrite); a second invocation skips the (method, seed) pairs whose line has the same hash. A run killed
midway leaves only complete files (the runner writes atomically) and is redone.

Fairness: every student method gets the same seeds, the same fixed data split (set by the configs) and the
same epoch budget (``budget_overrides`` splits a multi-stage budget in the config's own proportions).
"""
import contextlib
import datetime
import glob
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from tqdm import tqdm

from .configs import apply_dotted, budget_overrides, config_hash, has_key, read_structure
from .records import RunLedger, package_versions

__all__ = ['Job', 'HarnessError', 'plan_suite', 'run_jobs', 'run_suite', 'clean_stale_files']

ROLES = ('teacher', 'ta', 'student')
AUTO_PARALLEL_MIN_RUNS = 20


class HarnessError(ValueError):
    """Bad harness input (unknown method, bad seeds, a suite override no config has); the message says which."""


@dataclass
class Job:
    """One runner call: ``method`` is 'teacher', 'ta' or a student method name."""
    role: str
    method: str
    seed: int
    config: str
    overrides: dict
    config_hash: str
    run_dir: str
    teacher: str = None
    teacher_ckpt: str = None
    group: str = 'main'
    done: bool = False
    record: dict = field(default=None, repr=False)


def _overrides_for(config, suite, quick, method_overrides, budget):
    """The runner overrides of one run: suite-wide keys present in the config, the method's, then the budget."""
    structure = read_structure(config)
    overrides = {}
    suite_overrides = dict(suite.overrides)
    if quick:
        suite_overrides.update(suite.quick_overrides)
    for key, value in suite_overrides.items():
        if has_key(structure, key):
            overrides[key] = value
    overrides.update(method_overrides or {})
    try:
        structure = apply_dotted(structure, overrides)
    except KeyError as error:
        raise HarnessError(f'{config}: {error.args[0]}') from error
    if budget is not None:
        try:
            overrides.update(budget_overrides(structure, budget))
        except ValueError as error:
            raise HarnessError(f'{config}: {error}') from error
    return overrides


def _check_suite_overrides(suite, quick, configs):
    keys = set(suite.overrides) | (set(suite.quick_overrides) if quick else set())
    structures = [read_structure(config) for config in configs]
    unused = sorted(key for key in keys if not any(has_key(structure, key) for structure in structures))
    if unused:
        raise HarnessError(f'suite {suite.name!r}: override key(s) {unused} match no config of the suite')


def _check_methods(suite, methods):
    unknown = [method for method in methods if method not in suite.methods]
    if unknown:
        raise HarnessError(f'unknown method(s) {unknown} for suite {suite.name!r}; valid methods: '
                           f'{", ".join(suite.methods)}')
    for method in methods:
        role = suite.methods[method].teacher_role
        if role not in ('teacher', 'ta', None):
            raise HarnessError(f'method {method!r}: teacher_role must be one of teacher, ta or None, got {role!r}')
        if role == 'ta' and suite.ta_config is None:
            raise HarnessError(f'method {method!r} learns from the TA, but suite {suite.name!r} has no ta_config')


def _cache_done(run_dir):
    return os.path.isfile(os.path.join(run_dir, 'result.json')) and \
        os.path.isfile(os.path.join(run_dir, 'student_best.pt'))


def plan_suite(suite, output_dir, methods=None, seeds=None, quick=False, student_epochs=None,
               teacher_epochs=None, ta_epochs=None):
    """The jobs of a suite in dependency order, each marked ``done`` when a finished identical run exists."""
    methods = list(methods or suite.methods)
    _check_methods(suite, methods)
    seeds = list(suite.default_seeds if seeds is None else seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise HarnessError(f'seeds must be distinct integers, got {seeds!r}')
    roles = {suite.methods[method].teacher_role for method in methods}
    needs_ta = 'ta' in roles
    needs_teacher = needs_ta or 'teacher' in roles
    configs = [suite.methods[method].config for method in methods] + \
        ([suite.teacher_config] if needs_teacher else []) + ([suite.ta_config] if needs_ta else [])
    missing = [config for config in configs if not os.path.isfile(config)]
    if missing:
        raise HarnessError(f'config file(s) not found: {missing} (paths are relative to the repository root)')
    _check_suite_overrides(suite, quick, configs)
    ledger = RunLedger(output_dir)
    student_budget = student_epochs if student_epochs is not None else suite.student_epochs
    jobs, upstream = [], {}
    if needs_teacher:
        overrides = _overrides_for(suite.teacher_config, suite, quick, {},
                                   teacher_epochs if teacher_epochs is not None else suite.teacher_epochs)
        upstream['teacher'] = config_hash(suite.teacher_config, overrides)
        for seed in seeds:
            jobs.append(Job('teacher', 'teacher', seed, suite.teacher_config, overrides, upstream['teacher'],
                            os.path.join(output_dir, 'cache', f'teacher-{upstream["teacher"]}', f'seed{seed}')))
    if needs_ta:
        overrides = _overrides_for(suite.ta_config, suite, quick, {},
                                   ta_epochs if ta_epochs is not None else suite.ta_epochs)
        upstream['ta'] = config_hash(suite.ta_config, overrides, upstream['teacher'])
        for seed in seeds:
            jobs.append(Job('ta', 'ta', seed, suite.ta_config, overrides, upstream['ta'],
                            os.path.join(output_dir, 'cache', f'ta-{upstream["ta"]}', f'seed{seed}'), teacher='teacher'))
    for method in methods:
        spec = suite.methods[method]
        overrides = _overrides_for(spec.config, suite, quick, spec.overrides, student_budget)
        digest = config_hash(spec.config, overrides, upstream.get(spec.teacher_role))
        for seed in seeds:
            jobs.append(Job('student', method, seed, spec.config, overrides, digest,
                            os.path.join(output_dir, 'runs', method, f'seed{seed}'), teacher=spec.teacher_role,
                            group=spec.group))
    by_role_seed = {(job.role, job.seed): job for job in jobs if job.role != 'student'}
    for job in jobs:
        if job.teacher is not None:
            job.teacher_ckpt = os.path.join(by_role_seed[(job.teacher, job.seed)].run_dir, 'student_best.pt')
        job.record = ledger.find(job.method, job.seed, job.config_hash)
        # A teacher's cache directory is keyed by its hash: a complete one is reusable even without its ledger line.
        job.done = (_cache_done(job.run_dir) if job.role != 'student' else job.record is not None)
    return jobs


def clean_stale_files(output_dir):
    """Removes the temporary files of writes that a killed run never renamed into place; returns them."""
    stale = glob.glob(os.path.join(output_dir, '**', '.*.tmp'), recursive=True)
    for path in stale:
        os.remove(path)
    return stale


def _set_threads(threads):
    if threads:
        import torch
        torch.set_num_threads(threads)


def _init_worker(threads):
    """Worker set-up: its torch threads, and (Linux) death with the parent, so a killed harness leaves no
    orphan still writing into the results directory."""
    _set_threads(threads)
    try:
        import ctypes
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _reset_peak_memory():
    """Resets this process's peak-RSS counter (Linux ``clear_refs``), so each run's ``peak_memory_mb`` is its own
    peak rather than the largest of every run this process has done; best effort elsewhere."""
    try:
        with open('/proc/self/clear_refs', 'w') as fp:
            fp.write('5')
    except OSError:
        pass


def _train(job, device, show_progress):
    """Runs one job through the runner (in this process or a worker) and returns the runner's result dict."""
    from plugins.runner import run_config
    _reset_peak_memory()
    started = time.perf_counter()
    result = run_config(job.config, device=device, seed=job.seed, output_dir=job.run_dir,
                        teacher_ckpt=job.teacher_ckpt, overrides=job.overrides, show_progress=show_progress)
    result['harness_wall_time_s'] = time.perf_counter() - started
    return result


def _stage_split(history):
    counts = {}
    for entry in history:
        counts[entry['stage']] = counts.get(entry['stage'], 0) + 1
    return '+'.join(str(counts[stage]) for stage in sorted(counts))


def make_record(suite_name, job, result, output_dir, device, versions):
    """The ledger line of a finished run (the per-epoch history stays in the run's ``result.json``)."""
    return {
        'suite': suite_name, 'method': job.method, 'role': job.role, 'group': job.group, 'seed': job.seed,
        'teacher': job.teacher, 'metric': result['metric'], 'higher_is_better': result['higher_is_better'],
        'test': result['test'], 'best_val': result['best_val'], 'stages': result['stages'],
        'epochs': result['epochs'], 'epoch_split': _stage_split(result['history']),
        'wall_time_s': result['wall_time_s'], 'harness_wall_time_s': result.get('harness_wall_time_s'),
        'train_samples_per_s': result['train_samples_per_s'], 'peak_memory_mb': result['peak_memory_mb'],
        'student_params': result['student_params'], 'teacher_params': result['teacher_params'],
        'world_size': result.get('world_size', 1), 'device': device,
        'diagnostics': result.get('diagnostics'),  # dead ReLU units, loss growth (plugins/diagnostics.py)
        'config': job.config, 'overrides': job.overrides, 'config_hash': job.config_hash,
        'run_dir': os.path.relpath(job.run_dir, output_dir), 'versions': versions,
        'finished_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }


def _read_result(run_dir):
    import json
    with open(os.path.join(run_dir, 'result.json'), 'r', encoding='utf-8') as fp:
        return json.load(fp)


def auto_workers(device, num_runs):
    """Worker processes when the user did not say: one per CPU core (at most 8) for CPU suites with at least
    ``AUTO_PARALLEL_MIN_RUNS`` runs to do, where the workers' start-up (a few seconds of imports each) pays off;
    otherwise 1 (CUDA runs, short smoke runs). Results do not depend on it: every run is seeded on its own and
    uses ``threads`` torch threads whatever the number of workers."""
    if device != 'cpu' or num_runs < AUTO_PARALLEL_MIN_RUNS or 'WORLD_SIZE' in os.environ:
        return 1
    return max(1, min(8, os.cpu_count() or 1, num_runs))


def run_jobs(jobs, suite_name, output_dir, device='cpu', workers=1, threads=None, show_progress=None, log=print):
    """Runs the jobs not yet done, phase by phase (teachers, TAs, students), and returns every record.

    With ``workers`` > 1 the runs go to that many worker processes (``spawn``), each with ``threads`` torch
    threads; ``None`` chooses with :func:`auto_workers`. Only the main process of a torchrun launch writes
    the ledger.
    """
    from plugins import distributed as dist_util
    main_process = dist_util.is_main_process()
    interactive = sys.stderr.isatty() and main_process
    ledger = RunLedger(output_dir) if main_process else None
    versions = package_versions()
    pending = [job for job in jobs if not job.done]
    progress = tqdm(total=len(pending), desc=suite_name, unit='run', disable=not interactive, dynamic_ncols=True)

    def finish(job, result):
        job.done = True
        job.record = make_record(suite_name, job, result, output_dir, device, versions)
        if main_process:
            ledger.add(job.record)
            primary = result['metric']
            message = (f'[{suite_name}] {job.method} seed {job.seed}: test {primary} '
                       f'{result["test"][primary]:.4f} (best val {result["best_val"]:.4f}), '
                       f'{result["epochs"]} epochs in {result["wall_time_s"]:.1f} s')
            tqdm.write(message) if interactive else log(message)
        progress.update(1)

    for job in jobs:
        if job.done and job.record is None and job.role != 'student' and main_process:
            # A complete cached teacher whose ledger line was lost: restore the line from its result.json.
            job.record = make_record(suite_name, job, _read_result(job.run_dir), output_dir, device, versions)
            ledger.add(job.record)
    if workers is None:
        workers = auto_workers(device, len(pending))
    pool = None
    if workers > 1 and len(pending) > 1:
        # One pool for every phase: each worker pays the torch / torchdistill import once.
        pool = ProcessPoolExecutor(min(workers, len(pending)), mp_context=multiprocessing.get_context('spawn'),
                                   initializer=_init_worker, initargs=(threads,))
    try:
        for role in ROLES:  # a phase starts when the checkpoints it reads exist
            todo = [job for job in pending if job.role == role]
            if pool is not None:
                futures = {pool.submit(_train, job, device, False): job for job in todo}
                for future in as_completed(futures):
                    finish(futures[future], future.result())
                continue
            for job in todo:
                progress.set_postfix_str(f'{job.method} seed {job.seed}')
                finish(job, _train(job, device, show_progress and interactive))
                dist_util.barrier()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
    return [job.record for job in jobs if job.record is not None]


def run_suite(suite, output_dir, methods=None, seeds=None, quick=False, device='cpu', student_epochs=None,
              teacher_epochs=None, ta_epochs=None, workers=None, threads=None, show_progress=None, report=True,
              command=None, log=print):
    """Plans, runs (skipping finished runs) and reports ``suite``; returns the records of the selected runs."""
    import torch
    previous_threads = torch.get_num_threads()
    try:
        _set_threads(threads)
        return _run_suite(suite, output_dir, methods, seeds, quick, device, student_epochs, teacher_epochs, ta_epochs,
                          workers, threads, show_progress, report, command, log)
    finally:
        torch.set_num_threads(previous_threads)


@contextlib.contextmanager
def _exclusive(output_dir, enabled=True):
    """Holds an advisory lock on ``output_dir`` so two invocations never write the same results directory
    (the kernel drops it when the process dies, even by SIGKILL)."""
    if not enabled:
        yield
        return
    import fcntl
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, '.lock'), 'w') as fp:
        try:
            fcntl.flock(fp, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise HarnessError(f'{output_dir} is in use by another benchmark run; wait for it or choose another '
                               f'--output-dir') from None
        yield


def _run_suite(suite, output_dir, methods, seeds, quick, device, student_epochs, teacher_epochs, ta_epochs, workers,
               threads, show_progress, report, command, log):
    from plugins import distributed as dist_util
    import torch
    dist_util.init_distributed(torch.device(device))
    with _exclusive(output_dir, enabled=dist_util.is_main_process()):
        return _run_locked(suite, output_dir, methods, seeds, quick, device, student_epochs, teacher_epochs,
                           ta_epochs, workers, threads, show_progress, report, command, log)


def _run_locked(suite, output_dir, methods, seeds, quick, device, student_epochs, teacher_epochs, ta_epochs, workers,
                threads, show_progress, report, command, log):
    from plugins import distributed as dist_util
    jobs = plan_suite(suite, output_dir, methods, seeds, quick, student_epochs, teacher_epochs, ta_epochs)
    dist_util.barrier()
    to_run = sum(not job.done for job in jobs)
    if 'WORLD_SIZE' in os.environ:
        workers = 1  # under torchrun every rank takes part in every run, one run at a time
    elif workers is None:
        workers = auto_workers(device, to_run)
    if dist_util.is_main_process():
        stale = clean_stale_files(output_dir)
        if stale:
            log(f'[{suite.name}] removed {len(stale)} partial file(s) left by an interrupted run')
        log(f'[{suite.name}] {len(jobs)} runs planned, {len(jobs) - to_run} already finished (reused), {to_run} to run'
            + (f' in {workers} worker processes' if workers > 1 and to_run > 1 else ''))
    records = run_jobs(jobs, suite.name, output_dir, device, workers, threads, show_progress, log)
    if report and dist_util.is_main_process():
        from .report import write_report
        write_report(suite, current_records(suite, output_dir, quick, student_epochs, teacher_epochs, ta_epochs),
                     output_dir, command=command, log=log)
    return records


def current_records(suite, output_dir, quick=False, student_epochs=None, teacher_epochs=None, ta_epochs=None):
    """Every ledger record of ``output_dir`` that matches the suite's current configs (any method, any seed).

    The tables summarise the whole results directory, so running a subset (``--methods kd --seeds 0``) adds to
    them instead of replacing them; records of an older version of a config are left out.
    """
    current = {job.method: job.config_hash
               for job in plan_suite(suite, output_dir, None, [0], quick, student_epochs, teacher_epochs, ta_epochs)}
    return [record for record in RunLedger(output_dir).records
            if current.get(record['method']) == record['config_hash']]
