"""The base class of every error effvid raises for bad input (a file, a recipe value, a model
name, a checkpoint, a video). The `effvid` command prints such an error on one line and exits
with status 2; anything else is a bug and keeps its traceback. This module imports nothing, so
the command can name the class without loading torch."""


class EffvidError(Exception):
    """Bad input: the message says what is wrong and where, on one line."""


class ModelFileError(EffvidError, RuntimeError):
    """An exported model file cannot be read or run: not a model file, not exported by effvid,
    malformed metadata, or a runtime that refuses it."""


class MissingExtraError(EffvidError, ImportError):
    """An optional dependency is not installed: the message names the extra that installs it."""


class InputError(EffvidError, ValueError):
    """A value given to effvid (an option, an argument, a setting) that it cannot take."""
