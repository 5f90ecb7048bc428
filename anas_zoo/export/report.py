"""The report every export returns (and writes as its sidecar JSON), and the error of a failed check."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from anas_zoo.export.errors import ExportError
from anas_zoo.export.session import INPUT_NAME, OUTPUT_NAME


class ExportCheckError(ExportError):
    """The exported file failed validation; ``report`` says how."""

    def __init__(self, message: str, report: ExportReport):
        super().__init__(message)
        self.report = report


@dataclass
class ExportReport:
    """What an exporter wrote and how it checked it (also the content of the sidecar JSON).

    ``path`` is the main file (``.onnx``, OpenVINO ``.xml``, ``.pte``); ``files`` lists every file written
    besides the sidecar. ``opset`` is the ONNX opset of the graph (OpenVINO converts from it), or None.
    """

    path: str
    sidecar: str
    model: str
    precision: str
    opset: int | None
    format: str = "onnx"
    files: list = field(default_factory=list)
    exporter: str = ""
    fallback_reason: str | None = None
    dynamic_batch: bool = True
    batch: int | None = None
    resolution: int = 0
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    bn_folded: int = 0
    fold_max_abs_diff: float | None = None
    metadata: dict = field(default_factory=dict)
    quantization: dict | None = None
    validation: dict | None = None
    passed: bool | None = None
    error: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def first_line(error: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters), for one-line reports."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
