"""Logger, Metrics and Tracer, created once and shared by every handler and the runner; service
and namespace from the Powertools environment the CDK app sets. The Tracer is created on first
use and only where tracing is on: it imports the X-Ray SDK and botocore, a large part of a cold
import (docs/performance.md); jobctl and the tests never pay it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from shared.naming import METRICS_NAMESPACE, SERVICE

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE),
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE),
)


def tracing_enabled() -> bool:
    """As Powertools decides: in Lambda, unless POWERTOOLS_TRACE_DISABLED is true."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in {"1", "true", "yes", "on"}
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not disabled


class LazyTracer:
    """The two Tracer calls we use, creating the Powertools Tracer at the first one when tracing is on."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._tracer: Any = None

    def _get(self) -> Any:
        if self._tracer is None and tracing_enabled():
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=self._service)
        return self._tracer

    def put_annotation(self, key: str, value: str | int | float | bool) -> None:
        tracer = self._get()
        if tracer is not None:
            tracer.put_annotation(key=key, value=value)

    def capture_lambda_handler(self, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Like ``Tracer.capture_lambda_handler(**options)``; the real decorator is applied at the first call."""

        def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
            traced: list[Callable[..., Any]] = []

            @functools.wraps(handler)
            def wrapper(event: Any, context: Any) -> Any:
                if not traced:
                    tracer = self._get()
                    traced.append(handler if tracer is None else tracer.capture_lambda_handler(handler, **options))
                return traced[0](event, context)

            return wrapper

        return decorate


tracer = LazyTracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
