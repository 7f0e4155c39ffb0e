"""The results ledger: one JSON line per finished run in ``<output-dir>/runs.jsonl``.

Every update rewrites the whole file next to itself and renames it over the old one
(:func:`plugins.checkpoint.atomic_write_text`), so a run killed at any moment leaves either the previous
ledger or the new one, never a torn line. A run is finished once its line is there; the harness skips a
(method, seed) whose line carries the same config hash.
"""
import json
import os
import platform
import warnings
from importlib import metadata

from plugins.checkpoint import atomic_write_text

__all__ = ['RunLedger', 'package_versions', 'LEDGER_NAME']

LEDGER_NAME = 'runs.jsonl'
_PACKAGES = ('torch', 'torchvision', 'torchdistill', 'numpy', 'scipy', 'scikit-learn', 'transformers')


def package_versions():
    """Versions of Python and of the packages a result depends on (absent packages are left out)."""
    versions = {'python': platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class RunLedger:
    """The finished runs of one results directory, keyed by (method, seed)."""

    def __init__(self, output_dir):
        self.path = os.path.join(output_dir, LEDGER_NAME)
        self.records = []
        if os.path.isfile(self.path):
            with open(self.path, 'r', encoding='utf-8') as fp:
                for number, line in enumerate(fp, 1):
                    if not line.strip():
                        continue
                    try:
                        self.records.append(json.loads(line))
                    except json.JSONDecodeError:
                        # Only a hand-edited file can get here (writes are atomic): skip the line, the run is redone.
                        warnings.warn(f'{self.path}:{number} is not valid JSON; that run will be redone')

    def find(self, method, seed, config_hash=None):
        """The record of (method, seed), or None; with ``config_hash``, only a record of that exact config."""
        for record in self.records:
            if record['method'] == method and record['seed'] == seed and \
                    (config_hash is None or record['config_hash'] == config_hash):
                return record
        return None

    def add(self, record):
        """Adds (or replaces the record of the same method and seed) and rewrites the ledger atomically."""
        self.records = [r for r in self.records if (r['method'], r['seed']) != (record['method'], record['seed'])]
        self.records.append(record)
        atomic_write_text(self.path, ''.join(json.dumps(r, sort_keys=True) + '\n' for r in self.records))
