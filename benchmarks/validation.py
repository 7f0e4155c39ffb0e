"""What the harness checks before it trains anything: every planned config, and the files of runs it would reuse."""
import json
import os
from typing import Optional

from plugins.checkpoint import verify_checkpoint
from plugins.errors import CheckpointError, ConfigError, NamedError

__all__ = ['HarnessError', 'check_planned_configs', 'run_dir_problem', 'read_result']

RESULT_NAME, CHECKPOINT_NAME = 'result.json', 'student_best.pt'
_RESULT_KEYS = ('metric', 'test', 'history')


class HarnessError(NamedError, ValueError):
    """Bad harness input (unknown method, bad seeds, a suite override no config has, a config that cannot train);
    the message says which."""


def _describe(jobs):
    job = jobs[0]
    seeds = ', '.join(str(j.seed) for j in jobs)
    overrides = f' with overrides {json.dumps(job.overrides, sort_keys=True, default=str)}' if job.overrides else ''
    return f'{job.method} (seed {seeds}; {job.config}{overrides})'


def check_planned_configs(jobs) -> int:
    """Loads and checks every distinct (config, overrides) of the jobs still to run as the runner will (data sets
    built, each once; criteria, models, optimisers, schedules and loaders checked), before the first run starts.

    Returns the number of configs checked; :class:`HarnessError` names the method, seeds, config and field.
    """
    from plugins.caching import apply_teacher_cache
    from plugins.config_checks import checked_stages
    from plugins.config_loading import memoizing_loader
    from plugins.config_util import apply_overrides
    from plugins.runner import load_config

    groups = {}
    for job in jobs:
        if not job.done:
            groups.setdefault((job.config, json.dumps(job.overrides, sort_keys=True, default=str)), []).append(job)
    memo = {}
    loader = memoizing_loader(memo)
    try:
        for group in groups.values():
            job = group[0]
            try:
                config = apply_overrides(load_config(job.config, loader), job.overrides)
                apply_teacher_cache(config, checked_stages(config, teacher_ckpt=job.teacher_ckpt, require_files=False))
            except ConfigError as error:
                raise HarnessError(f'{_describe(group)}: {error}') from None
    finally:
        memo.clear()  # the data sets built for the checks
    return len(groups)


def read_result(run_dir: str) -> Optional[dict]:
    """A run's ``result.json``, or None when it is missing or unreadable."""
    try:
        with open(os.path.join(run_dir, RESULT_NAME), 'r', encoding='utf-8') as fp:
            result = json.load(fp)
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and all(key in result for key in _RESULT_KEYS) else None


def run_dir_problem(run_dir: str) -> Optional[str]:
    """Why a finished run's files cannot be reused (a missing or truncated ``result.json`` or checkpoint), or
    None. The checkpoint is memory-mapped, so a large one is checked without reading its tensors."""
    path = os.path.join(run_dir, RESULT_NAME)
    if not os.path.isfile(path):
        return f'{path} is missing'
    if read_result(run_dir) is None:
        return f'{path} is not a complete result (truncated or damaged JSON, or keys {list(_RESULT_KEYS)} missing)'
    try:
        verify_checkpoint(os.path.join(run_dir, CHECKPOINT_NAME), what='checkpoint')
    except CheckpointError as error:
        return str(error)
    return None
