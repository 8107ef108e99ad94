"""Errors of the ingest utility."""

from cadence.errors import InvalidInputError


class UnreadableFileError(InvalidInputError):
    """The file cannot be read at all (format, encoding, header); it is moved aside whole.

    `reason` is a short stable code for the report, e.g. ``missing_columns:customer_id``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
