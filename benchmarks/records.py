"""The results ledger: one JSON line per finished run in ``<output-dir>/runs.jsonl``.

Every update rewrites the whole file next to itself and renames it over the old one
(:func:`plugins.atomic_files.atomic_write_text`), so a run killed at any moment leaves either the previous
ledger or the new one, never a torn line. A line is keyed by (suite, method, seed, config hash), so one
directory holds several suites, and the runs of other settings (``--quick``, other epochs, another world size),
without one replacing another. ``status`` is ``"ok"`` (a result; lines from older versions have no status and
are ok) or ``"failed"`` (no result: ``error`` is the one-line reason, ``error_type`` its class). A line that
is not valid JSON or lacks a key the reports read is skipped with a warning naming the file and line; that run
is redone.
"""
import datetime
import json
import os
import platform
import warnings
from importlib import metadata

from plugins.atomic_files import atomic_write_text

__all__ = ['RunLedger', 'package_versions', 'LEDGER_NAME', 'record_status', 'record_problem', 'IDENTITY_KEYS',
           'RESULT_KEYS', 'make_record', 'make_failure_record']

LEDGER_NAME = 'runs.jsonl'
_PACKAGES = ('torch', 'torchvision', 'torchdistill', 'numpy', 'scipy', 'scikit-learn', 'transformers')
IDENTITY_KEYS = {'suite': str, 'method': str, 'seed': int, 'config_hash': str, 'role': str}
_NUMBER = (int, float)
RESULT_KEYS = {'metric': str, 'test': dict, 'best_val': _NUMBER, 'higher_is_better': bool, 'epochs': int,
               'epoch_split': str, 'run_dir': str, 'stages': list, 'wall_time_s': _NUMBER, 'peak_memory_mb': _NUMBER,
               'student_params': int}


def package_versions():
    """Versions of Python and of the packages a result depends on (absent packages are left out)."""
    versions = {'python': platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def record_status(record):
    """'ok' or 'failed' (a line without ``status`` is an ok line of an older version)."""
    return record.get('status', 'ok')


def _wrong_keys(record, expected):
    return [key for key, kind in expected.items()
            if key not in record or not isinstance(record[key], kind) or
            (kind is not bool and isinstance(record[key], bool))]


def record_problem(record):
    """Why a ledger line cannot be used (missing or mistyped keys, an unknown status), or None."""
    if not isinstance(record, dict):
        return f'it is a JSON {type(record).__name__}, not an object'
    wrong = _wrong_keys(record, IDENTITY_KEYS)
    status = record_status(record)
    if status == 'failed':
        wrong += _wrong_keys(record, {'error': str})
    elif status == 'ok':
        wrong += _wrong_keys(record, RESULT_KEYS)
        if not wrong and not isinstance(record['test'].get(record['metric']), (int, float)):
            wrong.append(f"test.{record['metric']}")
    else:
        return f"its status is {status!r}, not 'ok' or 'failed'"
    return f'it lacks (or mistypes) the key(s) {wrong}' if wrong else None


class RunLedger:
    """The runs of one results directory, keyed by (suite, method, seed, config hash).

    ``warn(message)`` is told about each unusable line (default: :func:`warnings.warn`).
    """

    def __init__(self, output_dir, warn=None):
        warn = warn or warnings.warn
        self.path = os.path.join(output_dir, LEDGER_NAME)
        self.records = []
        if not os.path.isfile(self.path):
            return
        with open(self.path, 'r', encoding='utf-8', errors='replace') as fp:
            for number, line in enumerate(fp, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    problem = 'is not valid JSON'
                else:
                    problem = record_problem(record)
                    problem = problem and f'is not a usable record: {problem}'
                if problem:
                    # Writes are atomic: only a hand-edited or damaged file gets here. The run is redone.
                    warn(f'{self.path}:{number} {problem}; the line is ignored (its run is redone; a teacher or TA '
                         f'whose files are complete is reused)')
                    continue
                self.records.append(record)

    @staticmethod
    def key(record):
        return record['suite'], record['method'], record['seed'], record['config_hash']

    def find(self, suite, method, seed, config_hash=None):
        """The record of (suite, method, seed), or None; with ``config_hash``, only a record of that exact config."""
        for record in self.records:
            if (record['suite'], record['method'], record['seed']) == (suite, method, seed) and \
                    (config_hash is None or record['config_hash'] == config_hash):
                return record
        return None

    def add(self, record):
        """Adds ``record`` (replacing the line with the same key in place) and rewrites the ledger atomically."""
        key = self.key(record)
        positions = [i for i, existing in enumerate(self.records) if self.key(existing) == key]
        if positions:
            self.records[positions[0]] = record
            self.records = [r for i, r in enumerate(self.records) if i not in positions[1:]]
        else:
            self.records.append(record)
        atomic_write_text(self.path, ''.join(json.dumps(r, sort_keys=True) + '\n' for r in self.records))


def _stage_split(history):
    counts = {}
    for entry in history:
        counts[entry['stage']] = counts.get(entry['stage'], 0) + 1
    return '+'.join(str(counts[stage]) for stage in sorted(counts))


def _identity(suite_name, job, output_dir, device, versions):
    return {
        'suite': suite_name, 'method': job.method, 'role': job.role, 'group': job.group, 'seed': job.seed,
        'teacher': job.teacher_role, 'device': device, 'config': job.config, 'overrides': job.overrides,
        'config_hash': job.config_hash, 'run_dir': os.path.relpath(job.run_dir, output_dir), 'versions': versions,
        'finished_at': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
    }


def make_record(suite_name, job, result, output_dir, device, versions):
    """The ledger line of a finished run (the per-epoch history stays in the run's ``result.json``)."""
    return dict(_identity(suite_name, job, output_dir, device, versions), **{
        'status': 'ok', 'metric': result['metric'], 'higher_is_better': result['higher_is_better'],
        'test': result['test'], 'best_val': result['best_val'], 'stages': result['stages'],
        'epochs': result['epochs'], 'epoch_split': _stage_split(result['history']),
        'wall_time_s': result['wall_time_s'], 'harness_wall_time_s': result.get('harness_wall_time_s'),
        'train_samples_per_s': result['train_samples_per_s'], 'peak_memory_mb': result['peak_memory_mb'],
        'student_params': result['student_params'], 'teacher_params': result['teacher_params'],
        'world_size': result.get('world_size', 1),
        'diagnostics': result.get('diagnostics'),  # dead ReLU units, loss growth (plugins/diagnostics.py)
    })


def make_failure_record(suite_name, job, error, output_dir, device, versions, world_size=1):
    """The ledger line of a run that ended without a result: ``error`` is its one-line reason."""
    from plugins.errors import one_line
    return dict(_identity(suite_name, job, output_dir, device, versions), status='failed', error=one_line(error),
                error_type=type(error).__name__, world_size=world_size)
