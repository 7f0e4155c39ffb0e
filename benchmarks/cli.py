"""Command line of ``benchmarks/run.py``: parses the flags, builds the suite, hands over to the harness.

Exit status: 0 when every run has a result; 1 when some run failed (the others ran and the report was
written; the failures are listed on stderr and in ``runs.jsonl``) or the machine stopped the suite (e.g. a
full disk); 2 for bad input (a usage error naming the flag, config field or file), before any training.
"""
import argparse
import os
import sys
import time

from plugins.config_checks import SEED_RANGE, ConfigError, check_device, parse_value
from plugins.errors import CheckpointError, OutputWriteError

from .harness import HarnessError, HarnessOptions, run_suite
from .records import record_status
from .suites import DEFAULT_SUITE, SuiteError, build_suite, suite_names

__all__ = ['build_parser', 'parse_options', 'parse_seeds', 'main']


def build_parser(doc: str = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python benchmarks/run.py', description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--suite', default=DEFAULT_SUITE,
                        help=f'benchmark suite, one of: {", ".join(suite_names())} (default: {DEFAULT_SUITE})')
    parser.add_argument('--methods', action='append', metavar='M1,M2',
                        help='student methods to run, comma-separated or repeated (default: all of the suite); '
                             'TAKD needs the TA, which is then trained too; --list-methods shows the names')
    parser.add_argument('--list-methods', action='store_true', help="print the suite's methods and exit")
    parser.add_argument('--seeds', nargs='+', metavar='SEED',
                        help="seeds, e.g. '--seeds 0 1 2' or '--seeds 0,1,2' (default: the suite's, 0-9 for digits)")
    parser.add_argument('--epochs', type=int, metavar='N',
                        help="epoch budget of every student method; a multi-stage config (Annealing-KD) keeps its "
                             "own split of it (default: the suite's, 50 for digits)")
    parser.add_argument('--teacher-epochs', type=int, metavar='N', help="teacher epochs (default: its config's)")
    parser.add_argument('--ta-epochs', type=int, metavar='N', help="teacher assistant epochs (default: its config's)")
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' / 'cuda:N' (default: cpu)")
    parser.add_argument('--output-dir', metavar='DIR',
                        help='results directory: runs.jsonl, summary.md/.csv, plots, cached teachers '
                             '(default: results/<suite name>, or results/<suite name>-quick with --quick, in the '
                             'repository)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: fewer seeds, methods and epochs (digits: about 20 s); not a result')
    parser.add_argument('--jobs', type=int, metavar='N',
                        help='runs trained at once in worker processes (default: one per CPU core, at most 8, when '
                             'a CPU suite has 20 or more runs to do, else 1; always 1 under torchrun). Results do '
                             'not depend on it')
    parser.add_argument('--threads', type=int, metavar='N',
                        help='torch threads per run (default on CPU: 1, the fastest for these small models and '
                             'safe when other processes share the cores; on CUDA: torch default)')
    parser.add_argument('--task', help='GLUE task (glue suite)')
    parser.add_argument('--data-root', metavar='DIR', help='where the suite finds its data (cifar, glue)')
    parser.add_argument('--download', action='store_true', help='let the suite download missing data (cifar)')
    parser.add_argument('--option', action='append', default=[], metavar='KEY=VALUE',
                        help='suite option, repeatable, e.g. --option family=cnn or, for digits, --option '
                             'ablations=true (numbers as written, e.g. 1e-3, else YAML scalars)')
    parser.add_argument('--retry-failed', action='store_true',
                        help='run again the runs that diverged before (other failed runs are always retried)')
    return parser


def parse_options(args: argparse.Namespace) -> dict:
    """The suite options: --task, --data-root, --download (when given) and every --option KEY=VALUE."""
    options = {}
    if args.task is not None:
        options['task'] = args.task
    if args.data_root is not None:
        options['data_root'] = os.path.abspath(os.path.expanduser(args.data_root))
    if args.download:
        options['download'] = True
    for item in args.option:
        key, separator, value = item.partition('=')
        if not separator or not key:
            raise ValueError(f'--option expects KEY=VALUE, got {item!r}')
        options[key] = parse_value(value)
    return options


def parse_seeds(values: list) -> list:
    if values is None:
        return None
    seeds = []
    for value in values:
        for part in value.split(','):
            if part.strip():
                try:
                    seeds.append(int(part))
                except ValueError:
                    raise ValueError(f'--seeds expects integers, got {part!r}') from None
    low, high = SEED_RANGE
    for seed in seeds:
        if not low <= seed <= high:
            raise ValueError(f'--seeds: {seed} is out of range; a seed is an integer in [{low}, {high}]')
    return seeds


def _parse_methods(values):
    if values is None:
        return None
    names = [name.strip() for value in values for name in value.split(',') if name.strip()]
    if not names:
        raise ValueError(f'--methods names no method (got {",".join(values)!r}); --list-methods shows the names')
    return names


def _report_failures(name, records):
    failed = [record for record in records if record_status(record) == 'failed']
    if failed:
        print(f'[{name}] {len(failed)} of {len(records)} runs failed (no result; see runs.jsonl):', file=sys.stderr)
        for record in failed:
            print(f'  {record["method"]} seed {record["seed"]}: {record["error"]}', file=sys.stderr)
    return len(failed)


def _check_numbers(parser, args):
    """Refuses (usage error) a device or a count the harness cannot use, before anything is built."""
    try:
        check_device(args.device)
    except ConfigError as error:
        parser.error(str(error))
    for name in ('epochs', 'teacher_epochs', 'ta_epochs', 'threads', 'jobs'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')


def _list_methods(suite):
    for name, spec in suite.methods.items():
        print(f'{name:28s} {spec.group:9s} teacher={spec.teacher_role or "-":8s} {spec.config} {spec.note}')


def _harness_options(args, command):
    """The harness options of the parsed flags (CPU runs default to one torch thread each)."""
    return HarnessOptions(seeds=parse_seeds(args.seeds), methods=_parse_methods(args.methods), quick=args.quick,
                          device=args.device, student_epochs=args.epochs, teacher_epochs=args.teacher_epochs,
                          ta_epochs=args.ta_epochs, workers=args.jobs,
                          threads=args.threads or (1 if args.device == 'cpu' else None), command=command,
                          retry_failed=args.retry_failed)


def _run(parser, suite, output_dir, options):
    """Runs the suite: (its records, whether this is the main process), or the exit status of a stopped suite."""
    from plugins import distributed as dist_util
    try:
        records = run_suite(suite, output_dir, options)
        return records, dist_util.is_main_process()
    except (HarnessError, ConfigError, CheckpointError) as error:
        parser.error(str(error))
    except FileNotFoundError as error:  # a data set or checkpoint that is not on this machine
        print(f'error: {error}', file=sys.stderr)
        return 2
    except OSError as error:  # the machine stopped the suite (e.g. a full disk): finished runs are kept
        print(f'error: {error.strerror if isinstance(error, OutputWriteError) else error}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('interrupted: finished runs are kept; run the same command again to resume', file=sys.stderr)
        return 130
    finally:
        dist_util.cleanup()


def main(argv: list = None, doc: str = None, repo_root: str = None, command: str = None) -> int:
    parser = build_parser(doc)
    args = parser.parse_args(argv)
    _check_numbers(parser, args)
    output_dir = os.path.abspath(args.output_dir) if args.output_dir else None
    if repo_root is not None:
        os.chdir(repo_root)  # suites name their configs relative to the repository root
    try:
        suite_options, options = parse_options(args), _harness_options(args, command)
        suite = build_suite(args.suite, suite_options, args.quick)
    except (SuiteError, ValueError) as error:
        parser.error(str(error))
    if args.list_methods:
        _list_methods(suite)
        return 0
    # A quick run has its own default directory: its short runs must not replace the real ones in the ledger.
    output_dir = output_dir or os.path.abspath(os.path.join('results', suite.name + ('-quick' if args.quick else '')))
    start = time.perf_counter()
    outcome = _run(parser, suite, output_dir, options)
    if isinstance(outcome, int):
        return outcome
    records, main_process = outcome
    if not main_process:
        return 0
    failures = _report_failures(suite.name, records)
    print(f'[{suite.name}] done in {time.perf_counter() - start:.1f} s; results in {output_dir}')
    return 1 if failures else 0
