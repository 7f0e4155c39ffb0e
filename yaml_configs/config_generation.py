"""Shared by the config generators (``cifar_configs.py``, ``glue_configs.py``): file names in torchdistill's
sample layout, and writing the YAMLs or checking that the files on disk are up to date."""
import argparse
import os

from plugins.checkpoint import atomic_write_text

__all__ = ['config_path', 'sync_configs']


def config_path(folder, method, student, teacher=None):
    """``<folder>/<method>/<student>_from_<teacher>.yaml``, or ``<folder>/<method>/<student>.yaml`` from scratch."""
    name = student if teacher is None else f'{student}_from_{teacher}'
    return os.path.join(folder, method, f'{name}.yaml')


def sync_configs(configs, root, script, description, argv=None):
    """Writes ``configs`` ({path relative to ``root``: YAML text}); with ``--check`` only reports stale files.

    Returns the exit code: 1 when ``--check`` finds a file that differs from the generator, else 0.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--check', action='store_true', help='only report configs that differ from this script')
    args = parser.parse_args(argv)
    stale = []
    for path, text in configs.items():
        full_path = os.path.join(root, path)
        current = open(full_path).read() if os.path.isfile(full_path) else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            atomic_write_text(full_path, text)
    if args.check and stale:
        print(f'out of date (run python yaml_configs/{script}):\n  ' + '\n  '.join(stale))
        return 1
    print(f'{len(stale)} config(s) {"differ" if args.check else "written"}, {len(configs)} in total')
    return 0
