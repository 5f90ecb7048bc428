"""Console entry points. Shared conventions: ``--json`` prints one JSON document to stdout, errors
go to stderr as one line, exit code 0 on success, 1 on a failed operation, 2 on bad usage."""
