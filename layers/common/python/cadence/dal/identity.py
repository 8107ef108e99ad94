"""Who is calling: the IAM principal of the credentials in use (what the campaign audit trail records)."""

from botocore.exceptions import ClientError

from cadence.dal import clients


def caller_arn() -> str:
    """The caller's IAM principal ARN (an assumed role's session ARN names the person or job behind it)."""
    try:
        return str(clients.client("sts").get_caller_identity()["Arn"])
    except ClientError as exc:
        raise clients.translate(exc, "sts.get_caller_identity") from exc
