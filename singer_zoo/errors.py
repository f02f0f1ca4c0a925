"""Typed errors of singer_zoo.

Every error a user can trigger with bad input derives from `SingerZooError`, so a batch job
can catch that one class, report the file and go on. Errors about a file carry its path and a
one-line description of the problem; `str(err)` reads "<path>: <problem>".
"""
from __future__ import annotations

import os


class SingerZooError(Exception):
    """Base class of all errors raised on bad input or bad configuration."""


class ConfigError(SingerZooError, ValueError):
    """A configuration value (dataclass field, YAML file, CLI option) is invalid."""


class UnknownNameError(SingerZooError, KeyError):
    """A name (model, front end, block, aggregation...) is not registered.

    The message lists the valid names, then `hint` (what else the user may pass) if given.
    """

    def __init__(self, kind: str, name: str, valid, hint: str = ""):
        self.kind, self.name, self.valid, self.hint = kind, name, sorted(valid), hint
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid) or 'none'}"
                         + (f"; {hint}" if hint else ""))

    def __reduce__(self):  # pickled by its fields (custom __init__: the default fails)
        return type(self), (self.kind, self.name, self.valid, self.hint)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class FileProblem(SingerZooError):
    """A problem with one input file; `path` names it, `problem` says what is wrong."""

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # pickled by its fields (custom __init__: the default fails)
        return type(self), (self.path, self.problem)


class AudioError(FileProblem):
    """An audio file cannot be used."""


class AudioFileNotFound(AudioError, FileNotFoundError):
    """The audio file does not exist."""


class EmptyAudioFile(AudioError):
    """The file has zero bytes or decodes to zero samples."""


class CorruptAudioFile(AudioError):
    """The file is not audio, is truncated, or no decoder can read it."""


class InvalidSamplesError(AudioError):
    """The decoded samples contain NaN or infinite values."""


class SilentAudioError(AudioError):
    """The recording is all silence (no sample above the silence threshold)."""


class ManifestError(FileProblem):
    """A manifest CSV is malformed (missing columns, missing files, duplicate rows...)."""


class IntegrityError(FileProblem):
    """An exported model's file is missing, unlisted or differs from its recorded sha256."""


class ExportCheckError(SingerZooError):
    """An exported file does not reproduce the Keras model within the stated tolerance."""


class CorruptIndexError(FileProblem):
    """A voice-search index folder is missing, unreadable or inconsistent."""
