"""The error tree domain code raises; handlers and the batch processor decide what a failure means."""


class CadenceError(Exception):
    """Base of every error cadence raises on purpose."""


class InvalidInputError(CadenceError):
    """The input (a file, a message, an event) is malformed; retrying will not help."""


class TransientError(CadenceError):
    """A dependency failed in a way worth retrying (throttling, timeouts)."""


class ThrottledError(TransientError):
    """The dependency said the caller went too fast (a 429 or a throttling code): slow down, then retry."""


class RetryLaterError(TransientError):
    """The work cannot be done before `after_seconds` have passed (a lease another delivery holds, a run still
    settling): a queue consumer should see the message again then, not at the queue's own visibility timeout.

    Each early redelivery spends one of the message's receives before its dead-letter queue, and under load they
    crowd out the work that is ready.
    """

    def __init__(self, message: str, *, after_seconds: float) -> None:
        super().__init__(message)
        self.after_seconds = after_seconds


class PermanentError(CadenceError):
    """A dependency rejected the request; retrying the same request will fail again."""


class UncertainOutcomeError(CadenceError):
    """The request reached a dependency but no answer came (a read timeout): it may have taken effect.

    Repeating a request that is not idempotent (an email, an SMS) could do it twice, so nothing repeats it.
    """


class ModelMismatchError(CadenceError):
    """The model artefact does not match its manifest or the feature specification."""
