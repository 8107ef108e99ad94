"""boto3 clients pointed at the local endpoint with fake credentials."""

from __future__ import annotations

import threading
from typing import Any, Final

import boto3
from botocore.config import Config

FAKE_ACCESS_KEY: Final = "testing"
FAKE_SECRET_KEY: Final = "testing"  # noqa: S105 - moto accepts any credentials; these never reach AWS


class Clients:
    """One cached client per service; safe to share between threads (boto3 clients are, sessions are not)."""

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._lock = threading.RLock()
        self._session = boto3.session.Session(
            aws_access_key_id=FAKE_ACCESS_KEY, aws_secret_access_key=FAKE_SECRET_KEY, region_name=region
        )
        self._clients: dict[str, Any] = {}
        # Long enough for an SQS long poll; few retries because the server is local and errors are real.
        self._config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)

    def __call__(self, service: str) -> Any:
        """The cached client for ``service``."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.new(service)
            return self._clients[service]

    def new(self, service: str) -> Any:
        """A new client (callers that want their own, e.g. a test)."""
        with self._lock:
            return self._session.client(service, endpoint_url=self.endpoint_url, config=self._config)
