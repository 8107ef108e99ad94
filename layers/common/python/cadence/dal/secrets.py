"""Secrets Manager: the stack's signing keys, read once per container."""

from functools import cache

from botocore.exceptions import ClientError

from cadence.dal import clients


@cache
def signing_key(secret_id: str) -> bytes:
    """The secret's string as a key (cached: a rotated key reaches new containers; the old one keeps verifying
    wherever it is still held).

    Raises:
        TransientError: throttling or an outage.
        PermanentError: no such secret, or no permission to read it.
    """
    try:
        value = clients.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        raise clients.translate(exc, "secretsmanager.get_secret_value") from exc
    return str(value["SecretString"]).encode()
