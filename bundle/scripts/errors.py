"""One clear last line for the bundle's own errors.

MONAI reports an error raised while it builds or runs a config component as "Failed to instantiate
component" or "Failed to evaluate ConfigExpression", with the cause 30-80 lines up the traceback. The hook
installed here prints the usual traceback (kept in the log) and then, as the last line, the message of the
innermost error raised by this bundle's code: the file or option, what is wrong, what to do."""

from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def own_error(error: BaseException) -> BaseException | None:
    """The innermost exception of ``error``'s chain (causes and contexts) raised in this package."""
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        frames = traceback.extract_tb(error.__traceback__)
        if frames and os.path.abspath(frames[-1].filename).startswith(PACKAGE_DIR + os.sep):
            found = error
        error = error.__cause__ or error.__context__
    return found


def _hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    sys.__excepthook__(kind, error, tb)
    own = own_error(error)
    if own is not None and own is not error:
        print(f"\nerror: {own}", file=sys.stderr)


def install() -> None:
    """Print the bundle's own error last, after the traceback of any uncaught exception."""
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _hook
