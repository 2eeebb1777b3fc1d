"""Errors whose message is meant for the user: one line, says what to do."""


class InputError(ValueError):
    """The user's input (file, image, sound) cannot be used; the message says why."""


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded (e.g. its checkpoint was never trained); the message says how to get it."""


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
