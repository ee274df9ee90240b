"""The one error type users see: a clear line and exit code 2, never a traceback."""


class DlxError(Exception):
    """Bad usage, config or data: the CLI prints ``str(err)`` on one line and exits with ``exit_code``."""

    exit_code = 2
