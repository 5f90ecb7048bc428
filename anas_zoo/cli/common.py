"""Conventions shared by every anas_zoo command-line tool."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from anas_zoo.space import InvalidArchError
from anas_zoo.store import WeightsError
from anas_zoo.zoo import UnknownModelError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: Errors that are the user's input or environment, reported as one line without a traceback.
USER_ERRORS = (UnknownModelError, InvalidArchError, WeightsError, FileNotFoundError, PermissionError, ValueError)


def fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def print_json(document) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def run(command: Callable[[], int | None]) -> int:
    """Run a CLI body: user errors become one stderr line and exit 1; Ctrl-C exits 130."""
    try:
        return command() or EXIT_OK
    except USER_ERRORS as e:
        return fail(str(e).strip("'\""))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
