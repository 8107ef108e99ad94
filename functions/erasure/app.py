"""Erasure function (invoked by `cadence customer erase ID`): removes the customer's data, returns what it removed."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from cadence import config, erasure
from cadence.observability import logger, metrics, tracer


class ErasureRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    customer_id: str = Field(min_length=1, max_length=128)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = ErasureRequest.model_validate(event)
    return asdict(erasure.erase(request.customer_id, config.erasure_settings()))
