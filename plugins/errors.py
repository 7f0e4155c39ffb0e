"""The project's named errors: each message is one line that names the field or file at fault and what is accepted.

Front ends (``python -m plugins.runner``, ``benchmarks/run.py``) print these messages without a traceback.
"""

__all__ = ['NamedError', 'ConfigError', 'CheckpointError', 'TrainingDivergedError', 'OutputWriteError',
           'TeacherCacheError', 'one_line']


class NamedError(Exception):
    """Base of the errors whose message alone says what is wrong (no type name or traceback needed)."""


class ConfigError(NamedError, ValueError):
    """A config (or run parameter) that cannot train correctly; the message names the field and what is accepted."""


class CheckpointError(NamedError, ValueError):
    """A checkpoint file that cannot be used: missing, truncated, not a checkpoint, unsafe, or of another model."""


class TrainingDivergedError(NamedError, RuntimeError):
    """The training loss became non-finite or exploded; the message gives the epoch, step, value and a hint."""


class OutputWriteError(NamedError, OSError):
    """A result, checkpoint or log file could not be written (full disk, read-only file system, ...).

    Raised as ``OutputWriteError(errno, message)``; ``str()`` is the message alone.
    """

    def __str__(self):
        return self.strerror or super().__str__()


class TeacherCacheError(NamedError, RuntimeError):
    """The teacher-output cache cannot be created where ``teacher_cache.cache_dir`` points (e.g. a full disk)."""


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (a named error's message, or ``Type: message`` for any other)."""
    text = str(error) if isinstance(error, NamedError) and str(error) else f'{type(error).__name__}: {error}'
    return ' '.join(text.split())
