"""One Logger, Metrics and Tracer per container, configured by the POWERTOOLS_* variables the template sets."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
metrics = Metrics()
tracer = Tracer()
