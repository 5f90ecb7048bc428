"""Conventions shared by every anas_zoo command-line tool."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import torch

from anas_zoo.space import InvalidArchError
from anas_zoo.store import WeightsError
from anas_zoo.train.runtime import parse_device
from anas_zoo.zoo import UnknownModelError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: Errors that are the user's input or environment, reported as one line without a traceback. OSError covers
#: missing, unwritable or occupied paths (a file where a folder is needed, or the reverse) and a full disk.
USER_ERRORS = (UnknownModelError, InvalidArchError, WeightsError, OSError, ValueError)


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """Print ``error: MESSAGE`` as one line on stderr (a multi-line message is joined with '; '); return ``code``."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    print(f"error: {'; '.join(lines)}", file=sys.stderr)
    return code


def describe(error: BaseException) -> str:
    """The message of ``error``; an operating-system error names its path(s) and the reason."""
    if isinstance(error, OSError) and error.strerror and str(error).startswith("[Errno"):
        paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
        return f"{paths}: {error.strerror}" if paths else error.strerror
    return str(error) or type(error).__name__


def device_argument(text: str) -> torch.device:
    """argparse type of ``--device``: a torch device this machine has (``cpu``, ``cuda``, ``cuda:1``)."""
    try:
        return parse_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def at_least(minimum: float, kind: type = int) -> Callable[[str], float]:
    """argparse type of a number of ``kind`` (int or float) that is ``minimum`` or more."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'} >= {minimum:g}, "
                                             f"got {text!r}")
        return value
    return parse


def comma_list(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    """argparse type of a comma-separated list of values from ``allowed`` (``--backends torch,ort``)."""
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"'{text}': allowed values are {', '.join(allowed)} (comma-separated)")
        return values
    return parse


#: Counts where 0 means none (``--workers 0`` loads data in the main process).
non_negative_int = at_least(0)
#: Counts of one or more (threads, batch size, steps).
positive_int = at_least(1)


def print_json(document) -> None:
    json.dump(document, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def run(command: Callable[[], int | None]) -> int:
    """Run a CLI body: user errors become one stderr line and exit 1; Ctrl-C exits 130."""
    try:
        return command() or EXIT_OK
    except USER_ERRORS as e:
        return fail(describe(e))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
