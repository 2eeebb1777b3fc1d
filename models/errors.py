"""Errors whose message is meant for the user: one line, says what to do."""
from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from typing import Callable


class UserError(Exception):
    """An error whose message is written for the user: one line, says what to do."""


class InputError(UserError, ValueError):
    """The user's input (file, image, sound) cannot be used; the message says why."""


class ModelUnavailable(UserError, RuntimeError):
    """A model cannot be loaded (e.g. its checkpoint was never trained); the message says how to get it."""


class UnknownModel(UserError, KeyError):
    """A model id that names no task or model here (a KeyError too: a lookup that found nothing)."""

    __str__ = Exception.__str__  # the message as written, not KeyError's repr of it


# What a command line reports in one line with exit status 2 instead of a traceback: errors written for
# the user and a file that is not there. Anything else is a bug, and keeps its traceback.
CLI_ERRORS: tuple[type[Exception], ...] = (UserError, FileNotFoundError)


def check_upload(path, max_bytes: int):
    """The uploaded file exists, is not empty and not over `max_bytes`; returns its size."""
    if not path.is_file():
        raise InputError(f"File not found: {path.name}")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name} is empty (0 bytes).")
    if size > max_bytes:
        raise InputError(f"{path.name} is {size / 2**20:.0f} MB; the limit is {max_bytes // 2**20} MB.")
    return size


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (a KeyError's without the quotes str() adds)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def as_user_error(*errors: type[Exception]):
    """Around loading what a user named (a model id, a config, a data folder): `errors` raised inside
    are the user's to fix, and become a UserError with the same one line; outside, they stay bugs."""
    try:
        yield
    except UserError:
        raise
    except errors as exc:
        raise UserError(one_line(exc)) from None


def cli_main(*errors: type[Exception]):
    """Decorator for a command's `main(argv=None) -> int`, the one error path every `python -m models.*` /
    `training.*` command shares: its exit status, or 2 with `error: <message>` on stderr when it raises
    one of CLI_ERRORS or `errors`."""
    def wrap(main: Callable[..., int]):
        @functools.wraps(main)
        def run(*args, **kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except CLI_ERRORS + errors as exc:
                print(f"error: {one_line(exc)}", file=sys.stderr)
                return 2
        return run
    return wrap
