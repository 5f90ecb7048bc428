"""The error of the official checkpoint import, shared by the reader and the key map."""


class OfficialCheckpointError(ValueError):
    """A file that is not a readable official checkpoint, or whose keys/shapes do not fit our supernet."""
