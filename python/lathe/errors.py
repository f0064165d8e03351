"""The exceptions of the lathe package: every one is a lathe.Error carrying the diagnostics.

``Error.diagnostics`` holds the full text lathe produced (``file:line:col: error: ...``, the
source line and a caret for model errors); ``str(e)`` is the same text, trimmed. The
subclasses also derive from the built-in exception a Python caller would expect (a wrong
dtype is a TypeError, an unknown name a KeyError, ...), so ``except ValueError`` keeps working.
"""


class Error(Exception):
    """Base class of every lathe error; ``diagnostics`` is lathe's text."""

    def __init__(self, diagnostics):
        self.diagnostics = str(diagnostics)
        super().__init__(self.diagnostics.rstrip("\n"))

    def __str__(self):
        return self.diagnostics.rstrip("\n")


class LibraryError(Error, OSError):
    """liblathe.so could not be found or loaded, or is not the version this package needs."""


class CompileError(Error):
    """The model did not compile (or a shared object did not open): ``diagnostics`` holds
    lathe's messages with ``file:line:col``, the source line and a caret."""


class InputError(Error, ValueError):
    """An input or output array does not fit the entry point."""


class DTypeError(InputError, TypeError):
    """An array has the wrong dtype (lathe never casts silently)."""


class ShapeError(InputError):
    """An array has the wrong shape."""


class MissingInputError(InputError):
    """An input the entry point needs was not given."""


class UnknownNameError(Error, KeyError):
    """No such input, output, parameter, state tensor or entry point."""

    def __str__(self):  # KeyError would quote the message
        return self.diagnostics.rstrip("\n")


class CallError(Error, RuntimeError):
    """The C call failed (lathe_error() text), e.g. a checkpoint that does not fit."""


class ClosedError(Error, RuntimeError):
    """The model was closed; it can no longer be called."""


class DataError(Error, ValueError):
    """A dataset for fit/evaluate/predict is unusable: a file that does not open or parse, a
    label out of range, arrays that do not fit the model (``diagnostics`` names the file, row
    or array and what was expected)."""
