"""Powertools logger, metrics and tracer, configured once per function.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (set by template.yaml), with defaults for local runs. The tracer
never records responses (they hold generated text) unless POWERTOOLS_TRACER_CAPTURE_RESPONSE
says otherwise, and Powertools disables it outside Lambda by itself.
"""

from __future__ import annotations

import os
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer

DEFAULT_NAMESPACE = "Cirrus"


@cache
def logger(service: str) -> Logger:
    return Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", service))


@cache
def metrics(service: str) -> Metrics:
    return Metrics(
        service=os.environ.get("POWERTOOLS_SERVICE_NAME", service),
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE),
    )


@cache
def tracer(service: str) -> Tracer:
    return Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", service))
