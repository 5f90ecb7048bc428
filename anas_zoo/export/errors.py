"""The error every export step raises for bad input, shared by the exporter and the int8 quantizer."""


class ExportError(ValueError):
    """Bad export input (model, path, opset, resolution, data) or an exporter that could not produce a graph."""
