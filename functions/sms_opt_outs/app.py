"""SMS opt-out function (hourly schedule): SNS's opted-out numbers -> consent_sms = false and suppressions."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cadence import config, sms_opt_outs
from cadence.observability import logger, metrics, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    return asdict(sms_opt_outs.sync(config.sms_opt_out_settings()))
