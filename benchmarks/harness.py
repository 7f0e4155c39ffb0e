"""Runs a suite through the project runner: teachers and TAs once per seed (cached), then every student method.

The harness has no training loop: each run is ``plugins.runner.run_config`` on a YAML config. Order:
1. the teacher of each seed (``<output-dir>/cache/teacher-<hash>/seed<k>``), trained from its own config;
2. the teacher assistant of each seed, by KD from that seed's teacher (only when a selected method is TAKD);
3. every student method on every seed (``<output-dir>/runs/<suite>/<method>-<hash>/seed<k>``), with the
   checkpoint of its teacher role passed as ``teacher_ckpt``.
The hash covers everything that changes a result but the seed (:func:`benchmarks.configs.config_hash`: the
config's bytes, the overrides, the upstream teacher's hash, the device type and the torchrun world size), so a
changed config retrains and an unchanged one is reused, and one output directory holds several suites and
settings side by side. Before the first run, every planned config is loaded and checked as the runner will
(:func:`benchmarks.validation.check_planned_configs`). Each run adds a line to ``runs.jsonl`` (atomic
rewrite, keyed by suite, method, seed and hash); a second invocation reuses a run whose line has the same key
and whose ``result.json`` and checkpoint are complete (checked, so a truncated file is redone, never counted).
A run killed midway leaves only complete files (the runner writes atomically) and is redone.

A run that fails (a diverging loss, a bad teacher checkpoint, any exception but an OS error such as a full
disk) becomes a ``"status": "failed"`` line with a one-line ``error``; its students fail too; the other runs go
on, the report is written, and the command exits non-zero. A rerun retries failed runs, except diverged ones
(:class:`~plugins.errors.TrainingDivergedError`): training is seeded, so the same config diverges again until
something that changes its hash changes, or ``--retry-failed`` asks for it.

Fairness: every student method gets the same seeds, the same fixed data split (set by the configs) and the
same epoch budget (``budget_overrides`` splits a multi-stage budget in the config's own proportions).
"""
import contextlib
import multiprocessing
import os
import signal
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Sequence

from tqdm import tqdm

from plugins.atomic_files import atomic_write_text
from plugins.config_checks import SEED_RANGE, check_directory
from plugins.config_util import has_dotted
from plugins.errors import ConfigError, NamedError

from .configs import apply_dotted, budget_overrides, config_hash, read_structure
from .records import RunLedger, make_failure_record, make_record, package_versions, record_status
from .suites.base import TEACHER_ROLES
from .validation import HarnessError, check_planned_configs, read_result, run_dir_problem

__all__ = ['Job', 'HarnessOptions', 'HarnessError', 'plan_suite', 'run_jobs', 'run_suite', 'clean_stale_files',
           'make_record', 'current_records', 'report_directory', 'KEPT_FAILURES', 'UpstreamFailedError']

ROLES = ('teacher', 'ta', 'student')
AUTO_PARALLEL_MIN_RUNS = 20
KEPT_FAILURES = ('TrainingDivergedError',)  # deterministic for a config hash: not retried unless asked
REPORT_OWNER = '.report-suite'  # names the suite whose summary is at the top of the results directory


class UpstreamFailedError(NamedError, RuntimeError):
    """A student (or TA) whose teacher run failed, so it cannot run."""


@dataclass(frozen=True)
class HarnessOptions:
    """What one harness invocation runs, and how; each field's default is the command line's.

    Which runs: ``methods`` (None: every method of the suite), ``seeds`` (None: the suite's), ``quick`` (the
    suite's smoke-run overrides), epoch budgets (None: the suite's, else the config's). Where: ``device`` and
    ``world_size`` (None: torchrun's), whose type and size enter the config hashes. How: ``workers`` processes
    (None: :func:`auto_workers`) of ``threads`` torch threads, ``show_progress`` bars, ``retry_failed`` (also
    diverged runs), ``report`` (write the tables), ``command`` (quoted in the report), ``log`` (one line each).
    """
    methods: Optional[Sequence[str]] = None
    seeds: Optional[Sequence[int]] = None
    quick: bool = False
    student_epochs: Optional[int] = None
    teacher_epochs: Optional[int] = None
    ta_epochs: Optional[int] = None
    device: str = 'cpu'
    world_size: Optional[int] = None
    retry_failed: bool = False
    workers: Optional[int] = None
    threads: Optional[int] = None
    show_progress: Optional[bool] = None
    report: bool = True
    command: Optional[str] = None
    log: Callable[[str], None] = print


def _options(options: Optional[HarnessOptions], fields: dict) -> HarnessOptions:
    """``options`` (default: :class:`HarnessOptions`) with ``fields`` replaced; an unknown field is a TypeError."""
    return replace(options or HarnessOptions(), **fields)


@dataclass
class Job:
    """One runner call: ``method`` is 'teacher', 'ta' or a student method name; ``teacher_role`` names the run
    whose checkpoint it distils from ('teacher', 'ta' or None), read from ``teacher_ckpt``."""
    role: str
    method: str
    seed: int
    config: str
    overrides: dict
    config_hash: str
    run_dir: str
    teacher_role: str = None
    teacher_ckpt: str = None
    group: str = 'main'
    done: bool = False
    record: dict = field(default=None, repr=False)
    reuse_problem: str = None  # why the files of an earlier finished run could not be reused

    @property
    def status(self):
        """'pending', 'ok' or 'failed'."""
        if not self.done:
            return 'pending'
        return record_status(self.record) if self.record is not None else 'ok'


def _overrides_for(config, suite, quick, method_overrides, budget):
    """The runner overrides of one run: suite-wide keys present in the config, the method's, then the budget."""
    structure = _structure(config)
    suite_overrides = dict(suite.overrides, **(suite.quick_overrides if quick else {}))
    overrides = {key: value for key, value in suite_overrides.items() if has_dotted(structure, key)}
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


def _structure(config):
    try:
        return read_structure(config)
    except ConfigError as error:
        raise HarnessError(str(error)) from None


def _check_suite_overrides(suite, quick, configs):
    keys = set(suite.overrides) | (set(suite.quick_overrides) if quick else set())
    structures = [_structure(config) for config in configs]
    unused = sorted(key for key in keys if not any(has_dotted(structure, key) for structure in structures))
    if unused:
        raise HarnessError(f'suite {suite.name!r}: override key(s) {unused} match no config of the suite')


def _check_methods(suite, methods):
    if not methods:
        raise HarnessError(f'no method selected for suite {suite.name!r}; valid methods: {", ".join(suite.methods)}')
    unknown = [method for method in methods if method not in suite.methods]
    if unknown:
        raise HarnessError(f'unknown method(s) {unknown} for suite {suite.name!r}; valid methods: '
                           f'{", ".join(suite.methods)}')
    for method in methods:
        role = suite.methods[method].teacher_role
        if role not in TEACHER_ROLES:
            raise HarnessError(f'method {method!r}: teacher_role must be one of teacher, ta or None, got {role!r}')
        if role == 'ta' and suite.ta_config is None:
            raise HarnessError(f'method {method!r} learns from the TA, but suite {suite.name!r} has no ta_config')


def _check_seeds(seeds):
    low, high = SEED_RANGE
    if not seeds or len(set(seeds)) != len(seeds) or \
            any(isinstance(s, bool) or not isinstance(s, int) or not low <= s <= high for s in seeds):
        raise HarnessError(f'seeds must be distinct integers in [{low}, {high}], got {seeds!r}')


def _environment(device, world_size):
    """What besides the config changes a result: the device type and the number of torchrun processes."""
    if world_size is None:
        from plugins import distributed as dist_util
        world_size = dist_util.get_world_size() if dist_util.is_distributed() else \
            int(os.environ.get('WORLD_SIZE', 1))
    return {'device': 'cuda' if str(device).startswith('cuda') else 'cpu', 'world_size': int(world_size)}


def _upstream_roles(suite, methods):
    """The teacher roles the selected methods need trained, in training order ('teacher' before 'ta')."""
    roles = {suite.methods[method].teacher_role for method in methods}
    return [role for role in ('teacher', 'ta') if role in roles or (role == 'teacher' and 'ta' in roles)]


def _check_files(suite, options, methods, upstream_roles):
    configs = [suite.methods[method].config for method in methods] + \
        [{'teacher': suite.teacher_config, 'ta': suite.ta_config}[role] for role in upstream_roles]
    missing = [config for config in configs if not os.path.isfile(config)]
    if missing:
        raise HarnessError(f'config file(s) not found: {missing} (paths are relative to the repository root)')
    _check_suite_overrides(suite, options.quick, configs)


def _first_given(*values):
    return next((value for value in values if value is not None), None)


def _upstream_jobs(suite, output_dir, options, roles, seeds, environment):
    """The teacher's and the TA's jobs (the TA distils from the teacher), cached by config hash."""
    specs = {'teacher': (suite.teacher_config, _first_given(options.teacher_epochs, suite.teacher_epochs), None),
             'ta': (suite.ta_config, _first_given(options.ta_epochs, suite.ta_epochs), 'teacher')}
    jobs, hashes = [], {}
    for role in roles:
        config, budget, teacher_role = specs[role]
        overrides = _overrides_for(config, suite, options.quick, {}, budget)
        hashes[role] = config_hash(config, overrides, hashes.get(teacher_role), environment)
        jobs += [Job(role, role, seed, config, overrides, hashes[role],
                     os.path.join(output_dir, 'cache', f'{role}-{hashes[role]}', f'seed{seed}'),
                     teacher_role=teacher_role) for seed in seeds]
    return jobs, hashes


def _student_jobs(suite, output_dir, options, methods, seeds, environment, upstream_hashes):
    budget = _first_given(options.student_epochs, suite.student_epochs)
    jobs = []
    for method in methods:
        spec = suite.methods[method]
        overrides = _overrides_for(spec.config, suite, options.quick, spec.overrides, budget)
        digest = config_hash(spec.config, overrides, upstream_hashes.get(spec.teacher_role), environment)
        jobs += [Job('student', method, seed, spec.config, overrides, digest,
                     os.path.join(output_dir, 'runs', suite.name, f'{method}-{digest}', f'seed{seed}'),
                     teacher_role=spec.teacher_role, group=spec.group) for seed in seeds]
    return jobs


def _plan_jobs(suite, output_dir, options):
    """The jobs of a suite in dependency order, with their hashes, run directories and teacher checkpoints
    (nothing read from disk but the configs)."""
    methods = list(suite.methods if options.methods is None else options.methods)
    seeds = list(suite.default_seeds if options.seeds is None else options.seeds)
    _check_methods(suite, methods)
    _check_seeds(seeds)
    roles = _upstream_roles(suite, methods)
    _check_files(suite, options, methods, roles)
    environment = _environment(options.device, options.world_size)
    jobs, hashes = _upstream_jobs(suite, output_dir, options, roles, seeds, environment)
    jobs += _student_jobs(suite, output_dir, options, methods, seeds, environment, hashes)
    by_role_seed = {(job.role, job.seed): job for job in jobs if job.role != 'student'}
    for job in jobs:
        if job.teacher_role is not None:
            job.teacher_ckpt = os.path.join(by_role_seed[(job.teacher_role, job.seed)].run_dir, 'student_best.pt')
    return jobs


def _mark_reusable(jobs, suite_name, ledger, retry_failed):
    """Marks ``done`` the jobs whose earlier run can be reused: an ok ledger line (teachers: or none) and complete
    files, or a kept failure (a diverged run, unless ``retry_failed``)."""
    for job in jobs:
        job.record = ledger.find(suite_name, job.method, job.seed, job.config_hash)
        if job.record is not None and record_status(job.record) == 'failed':
            job.done = not retry_failed and job.record.get('error_type') in KEPT_FAILURES
            continue
        if job.record is None and job.role == 'student':
            continue
        problem = run_dir_problem(job.run_dir)
        job.done = problem is None  # a complete teacher directory is reusable even without its ledger line
        if problem is not None and (job.record is not None or os.path.exists(os.path.join(job.run_dir,
                                                                                          'result.json'))):
            job.reuse_problem = problem


def plan_suite(suite, output_dir: str, options: HarnessOptions = None, warn: Callable[[str], None] = None,
               **fields) -> list:
    """The jobs of a suite in dependency order, each marked ``done`` when a finished identical run exists.

    ``options`` (or its ``fields`` by name, e.g. ``seeds=[0]``) choose the runs; ``warn`` is told about unusable
    ledger lines (default: :func:`warnings.warn`).
    """
    options = _options(options, fields)
    jobs = _plan_jobs(suite, output_dir, options)
    _mark_reusable(jobs, suite.name, RunLedger(output_dir, warn), options.retry_failed)
    return jobs


def clean_stale_files(output_dir: str) -> list:
    """Removes the temporary files of writes that a killed run never renamed into place; returns them."""
    import glob
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


def auto_workers(device: str, num_runs: int) -> int:
    """Worker processes when the user did not say: one per CPU core (at most 8) for CPU suites with at least
    ``AUTO_PARALLEL_MIN_RUNS`` runs to do, where the workers' start-up (a few seconds of imports each) pays off;
    otherwise 1 (CUDA runs, short smoke runs). Results do not depend on it: every run is seeded on its own and
    uses ``threads`` torch threads whatever the number of workers."""
    if device != 'cpu' or num_runs < AUTO_PARALLEL_MIN_RUNS or 'WORLD_SIZE' in os.environ:
        return 1
    return max(1, min(8, os.cpu_count() or 1, num_runs))


def _quiet(message):
    pass


def _is_run_failure(error):
    """A run's own failure (recorded; the suite goes on), not one of the machine (a full disk, a missing data set,
    a dead worker pool), which stops the suite."""
    return isinstance(error, Exception) and not isinstance(error, (OSError, BrokenProcessPool))


def _restore_teacher_lines(jobs, suite_name, output_dir, ledger, device, versions):
    for job in jobs:
        if job.done and job.record is None and job.role != 'student':
            # A complete cached teacher whose ledger line was lost: restore the line from its result.json.
            job.record = make_record(suite_name, job, read_result(job.run_dir), output_dir, device, versions)
            ledger.add(job.record)


def _upstream_failure(job, upstream):
    source = upstream.get((job.teacher_role, job.seed)) if job.teacher_role else None
    if source is None or source.status != 'failed':
        return None
    return UpstreamFailedError(f'its {job.teacher_role} run (seed {job.seed}) failed: {source.record["error"]}')


class _Recorder:
    """Turns each finished or failed run into its ledger line and its log line (written by the main process)."""

    def __init__(self, jobs, suite_name, output_dir, device, log, progress):
        from plugins import distributed as dist_util
        self.suite_name, self.output_dir, self.device, self.log, self.progress = \
            suite_name, output_dir, device, log, progress
        self.main_process = dist_util.is_main_process()
        self.interactive = sys.stderr.isatty() and self.main_process
        self.ledger = RunLedger(output_dir, warn=_quiet) if self.main_process else None  # plan_suite warned
        self.versions, self.world_size = package_versions(), dist_util.get_world_size()
        if self.main_process:
            _restore_teacher_lines(jobs, suite_name, output_dir, self.ledger, device, self.versions)

    def finish(self, job, result=None, error=None):
        """Records ``job``'s result, or its failure; re-raises an error that is not a run's own failure."""
        job.done = True
        if error is None:
            job.record = make_record(self.suite_name, job, result, self.output_dir, self.device, self.versions)
            primary = result['metric']
            message = (f'[{self.suite_name}] {job.method} seed {job.seed}: test {primary} '
                       f'{result["test"][primary]:.4f} (best val {result["best_val"]:.4f}), '
                       f'{result["epochs"]} epochs in {result["wall_time_s"]:.1f} s')
        else:
            if not _is_run_failure(error):
                raise error
            job.record = make_failure_record(self.suite_name, job, error, self.output_dir, self.device,
                                             self.versions, self.world_size)
            message = f'[{self.suite_name}] {job.method} seed {job.seed} FAILED: {job.record["error"]}'
            if self.main_process and not isinstance(error, NamedError):  # a bug: keep its traceback
                self.log(''.join(traceback.format_exception(error)).rstrip())
        if self.main_process:
            self.ledger.add(job.record)
            tqdm.write(message) if self.interactive else self.log(message)
        self.progress.update(1)


def _run_in_pool(pool, jobs, device, finish):
    futures = {pool.submit(_train, job, device, False): job for job in jobs}
    for future in as_completed(futures):
        error = future.exception()
        finish(futures[future], None if error is not None else future.result(), error)


def _run_here(jobs, device, show_progress, finish, progress):
    from plugins import distributed as dist_util
    for job in jobs:
        progress.set_postfix_str(f'{job.method} seed {job.seed}')
        try:
            result = _train(job, device, show_progress)
        except Exception as error:  # noqa: BLE001 (finish() re-raises what is not a run's own failure)
            finish(job, error=error)
        else:
            finish(job, result)
        dist_util.barrier()


def _worker_pool(workers, threads, num_pending):
    """One pool for every phase (each worker pays the torch / torchdistill import once), or None to run here."""
    if workers <= 1 or num_pending <= 1:
        return None
    return ProcessPoolExecutor(min(workers, num_pending), mp_context=multiprocessing.get_context('spawn'),
                               initializer=_init_worker, initargs=(threads,))


def run_jobs(jobs, suite_name: str, output_dir: str, options: HarnessOptions = None, **fields) -> list:
    """Runs the jobs not yet done, phase by phase (teachers, TAs, students), and returns every record.

    A run that fails is recorded as failed and the others go on (see the module docstring). With ``workers`` > 1
    the runs go to that many worker processes (``spawn``), each with ``threads`` torch threads; ``None`` chooses
    with :func:`auto_workers`. Only the main process of a torchrun launch writes the ledger.
    """
    from plugins import distributed as dist_util
    options = _options(options, fields)
    pending = [job for job in jobs if not job.done]
    upstream = {(job.role, job.seed): job for job in jobs if job.role != 'student'}
    progress = tqdm(total=len(pending), desc=suite_name, unit='run', dynamic_ncols=True,
                    disable=not (sys.stderr.isatty() and dist_util.is_main_process()))
    recorder = _Recorder(jobs, suite_name, output_dir, options.device, options.log, progress)
    workers = options.workers if options.workers is not None else auto_workers(options.device, len(pending))
    pool = _worker_pool(workers, options.threads, len(pending))
    try:
        for role in ROLES:  # a phase starts when the checkpoints it reads exist
            todo = []
            for job in (job for job in pending if job.role == role):
                failure = _upstream_failure(job, upstream)
                recorder.finish(job, error=failure) if failure is not None else todo.append(job)
            if pool is not None:
                _run_in_pool(pool, todo, options.device, recorder.finish)
            else:
                _run_here(todo, options.device, options.show_progress and recorder.interactive, recorder.finish,
                          progress)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
    return [job.record for job in jobs if job.record is not None]


def run_suite(suite, output_dir: str, options: HarnessOptions = None, **fields) -> list:
    """Plans, checks, runs (skipping finished runs) and reports ``suite``; returns the records of the selected runs
    (failed ones included, with ``status: failed``). ``options``, or its ``fields`` by name, say what and how."""
    import torch
    options = _options(options, fields)
    check_directory(output_dir, '--output-dir')
    previous_threads = torch.get_num_threads()
    try:
        _set_threads(options.threads)
        return _run_suite(suite, output_dir, options)
    finally:
        torch.set_num_threads(previous_threads)


@contextlib.contextmanager
def _exclusive(output_dir, enabled=True):
    """Holds an advisory lock on ``output_dir`` so two invocations never write the same results directory
    (the kernel drops it when the process dies, even by SIGKILL). The lock file is never truncated and never
    followed through a symbolic link."""
    if not enabled:
        yield
        return
    import fcntl
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, '.lock')
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o644)
    except OSError as error:
        raise HarnessError(f'{path}: cannot open the lock file ({error.strerror}); it must be a regular file, not a '
                           f'symbolic link') from None
    with os.fdopen(fd, 'r+b') as fp:
        try:
            fcntl.flock(fp, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise HarnessError(f'{output_dir} is in use by another benchmark run; wait for it or choose another '
                               f'--output-dir') from None
        yield


def _run_suite(suite, output_dir, options):
    from plugins import distributed as dist_util
    import torch
    dist_util.init_distributed(torch.device(options.device))
    with _exclusive(output_dir, enabled=dist_util.is_main_process()):
        return _run_locked(suite, output_dir, options)


def _plan_message(suite, jobs, to_run, workers):
    reused = sum(job.status == 'ok' for job in jobs)
    kept = sum(job.status == 'failed' for job in jobs)
    return (f'[{suite.name}] {len(jobs)} runs planned, {reused} already finished (reused), '
            + (f'{kept} failed before and kept (diverged; --retry-failed runs them again), ' if kept else '')
            + f'{to_run} to run' + (f' in {workers} worker processes' if workers > 1 and to_run > 1 else ''))


def _log_plan(suite, output_dir, jobs, workers, checked, log):
    """The main process's account of the plan: stale files removed, runs redone and why, what is reused."""
    stale = clean_stale_files(output_dir)
    if stale:
        log(f'[{suite.name}] removed {len(stale)} partial file(s) left by an interrupted run')
    for job in jobs:
        if job.reuse_problem:
            log(f'[{suite.name}] {job.method} seed {job.seed}: {job.reuse_problem}; it is run again')
    to_run = sum(not job.done for job in jobs)
    log(_plan_message(suite, jobs, to_run, workers) + (f'; {checked} config(s) checked' if checked else ''))


def _run_locked(suite, output_dir, options):
    from plugins import distributed as dist_util
    main_process = dist_util.is_main_process()
    warn = options.log if main_process else _quiet
    jobs = plan_suite(suite, output_dir, options, warn=lambda text: warn(f'[{suite.name}] warning: {text}'))
    checked = check_planned_configs(jobs)  # every config that will run, before the first run starts
    dist_util.barrier()
    if 'WORLD_SIZE' in os.environ:
        options = replace(options, workers=1)  # under torchrun every rank takes part in every run, one at a time
    elif options.workers is None:
        options = replace(options, workers=auto_workers(options.device, sum(not job.done for job in jobs)))
    if main_process:
        _log_plan(suite, output_dir, jobs, options.workers, checked, options.log)
    records = run_jobs(jobs, suite.name, output_dir, options)
    if options.report and main_process:
        _report(suite, output_dir, options)
    return records


def current_records(suite, output_dir: str, options: HarnessOptions = None, include_failed: bool = False,
                    **fields) -> list:
    """Every ledger record of ``output_dir`` that matches the suite's current configs (any method, any seed).

    The tables summarise the whole results directory, so running a subset (``--methods kd --seeds 0``) adds to
    them instead of replacing them; records of another suite or of an older version of a config are left out,
    and failed records unless ``include_failed``. Of ``options`` (or ``fields``) only the settings that enter
    the config hashes count (quick, epoch budgets, device, world size), not the selection of methods and seeds.
    """
    jobs = _plan_jobs(suite, output_dir, replace(_options(options, fields), methods=None, seeds=[0]))
    current = {job.method: job.config_hash for job in jobs}
    return [record for record in RunLedger(output_dir, warn=_quiet).records
            if record['suite'] == suite.name and current.get(record['method']) == record['config_hash']
            and (include_failed or record_status(record) == 'ok')]


def report_directory(output_dir: str, suite_name: str) -> str:
    """Where a suite's ``summary.md``, ``summary.csv`` and plots go: the top of ``output_dir`` for the first suite
    reported there (recorded in ``.report-suite``), ``output_dir/reports/<suite>`` for any other, so suites that
    share a directory never overwrite each other's summary."""
    marker = os.path.join(output_dir, REPORT_OWNER)
    try:
        with open(marker, 'r', encoding='utf-8') as fp:
            owner = fp.read().strip()
    except OSError:
        owner = ''
    if not owner:
        atomic_write_text(marker, suite_name + '\n')
        owner = suite_name
    return output_dir if owner == suite_name else os.path.join(output_dir, 'reports', suite_name)


def _report(suite, output_dir, options):
    """Writes the suite's report from its current records: ok ones whose result.json is complete, and failed ones
    (counted per method, never averaged)."""
    from .report import write_report
    report_dir = report_directory(output_dir, suite.name)
    records = []
    # failed lines too: the tables count them per method (and leave them out of every statistic)
    for record in current_records(suite, output_dir, options, include_failed=True):
        run_dir = os.path.join(output_dir, record['run_dir'])
        if record_status(record) == 'ok' and read_result(run_dir) is None:
            options.log(f'[{suite.name}] warning: {os.path.join(run_dir, "result.json")} is missing or damaged: '
                f'{record["method"]} seed {record["seed"]} is left out of the report (the next run redoes it)')
            continue
        records.append(dict(record, run_dir=os.path.relpath(run_dir, report_dir)))  # paths from the report
    write_report(suite, records, report_dir, command=options.command, log=options.log)
