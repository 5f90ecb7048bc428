"""Where an export writes: its output folder checked first, a staging folder beside the output with a progress
bar, and the atomic move of the checked files and sidecar into place (nothing left behind by a failed check)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from tqdm import tqdm

from anas_zoo.export.errors import ExportError
from anas_zoo.export.report import ExportCheckError, ExportReport
from anas_zoo.fileio import move_into_place, sha256_of, staging_folder


def writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and check that files can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the folder of output '{what}': {e.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ExportError(f"output folder '{folder}' is not writable")


def file_and_sidecar(output: str | Path, suffix: str) -> tuple[Path, Path]:
    """(output file, its ``.json`` sidecar) for a single-file format ending in ``suffix``, after checking that the
    folder exists or can be made and is writable and that neither target is in the way."""
    path = Path(output).expanduser()
    if path.suffix != suffix:
        raise ExportError(f"output '{output}' must end in {suffix} (the report goes beside it as .json)")
    if path.is_dir():
        raise ExportError(f"output '{output}' is a directory; give a file name ending in {suffix}")
    writable_folder(path.parent, output)
    check_replaceable((path, path.with_suffix(".json")))
    return path, path.with_suffix(".json")


def check_replaceable(paths: Sequence[Path]) -> None:
    """Each target is absent or a writable file, so that moving the staged files onto them cannot fail half-way."""
    for existing in paths:
        if existing.is_dir():
            raise ExportError(f"'{existing}' is a directory; the export writes a file there (remove or rename it)")
        if existing.exists() and not os.access(existing, os.W_OK):
            raise ExportError(f"'{existing}' exists and is not writable")


@contextlib.contextmanager
def staging(folder: Path, output: str, name: str, steps: Sequence[str], progress: bool
            ) -> Iterator[tuple[Path, Callable[[str], None]]]:
    """(temp folder beside the output ``folder/output``, ``step(label)`` progress callback) for exporting model
    ``name``; the folder is removed afterwards, and those that killed exports of the same output left are removed
    first (:func:`anas_zoo.fileio.staging_folder`)."""
    bar = tqdm(total=len(steps), desc=f"export {name}", unit="step", disable=None if progress else True)
    done = []

    def step(label: str) -> None:
        if done:
            bar.update()
        done.append(label)
        bar.set_postfix_str(label)

    try:
        with staging_folder(folder, output) as workdir:
            yield workdir, step
        bar.update(len(steps) - bar.n)
    finally:
        bar.close()


def publish(report: ExportReport, staged: dict[Path, Path], sidecar_format: str, keep_failed: bool,
            failure: Callable[[dict], str], start: float) -> ExportReport:
    """Move the ``staged`` files (temp -> final path, main file first) into place and write the sidecar.

    A failed check (``report.passed is False``) raises :class:`ExportCheckError` with ``failure``'s
    summary and writes nothing, unless ``keep_failed``: then the files and sidecar are written first.
    ``start`` is the ``time.perf_counter()`` of the export's start.
    """
    main_staged, main_path = next(iter(staged.items()))
    report.sha256, report.size_bytes = sha256_of(main_staged), sum(p.stat().st_size for p in staged)
    report.files = [p.name for p in staged.values()]
    if report.passed is False:
        report.error = failure(report.validation)
        if not keep_failed:
            report.path = report.sidecar = ""
            report.files = []
            raise ExportCheckError(f"{report.model}: {report.error}; no file written (keep_failed keeps it)", report)
    report.seconds = round(time.perf_counter() - start, 2)
    sidecar_doc = {**report.to_dict(), "format": sidecar_format, "file": main_path.name}  # the document's format
    staged_sidecar = main_staged.parent / "sidecar.json"
    staged_sidecar.write_text(json.dumps(sidecar_doc, indent=2, default=str) + "\n")
    sidecar = Path(report.sidecar)
    check_replaceable([*staged.values(), sidecar])
    # Under a lock on the folder, so a concurrent export to the same output moves its files before or after ours.
    # The main file goes last so a reader never finds it beside stale companions (e.g. an IR's old .bin).
    move_into_place([*reversed(staged.items()), (staged_sidecar, sidecar)])
    if report.passed is False:
        raise ExportCheckError(f"{report.model}: {report.error}; kept {main_path} as asked", report)
    return report
