"""The stack's alarm topic: what a person must look at (a campaign paused by the risk guard)."""

from botocore.exceptions import ClientError

from cadence.dal import clients


def publish(topic_arn: str, subject: str, message: str) -> None:
    """Publish one alert (SNS subjects stop at 100 characters).

    Raises:
        TransientError / PermanentError: SNS refused.
    """
    try:
        clients.client("sns").publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)
    except ClientError as exc:
        raise clients.translate(exc, "alerts.publish") from exc
