"""Errors whose message is meant for the user: one line, says what to do."""


class InputError(ValueError):
    """The user's input (file, image, sound) cannot be used; the message says why."""


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded (e.g. its checkpoint was never trained); the message says how to get it."""
