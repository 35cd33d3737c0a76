"""The Tracer is created lazily, only where tracing is on, and still traces the handler there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared import observability

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_handler_does_not_import_the_xray_sdk():
    # Given a Lambda-like environment (tracing would be on)
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "f", "PYTHONPATH": str(ROOT)}
    code = "import sys, functions.handler; print('aws_xray_sdk' in sys.modules, 'botocore.client' in sys.modules)"
    # When the handler module is imported (the cold start's import phase)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    # Then neither the X-Ray SDK nor botocore's client machinery has been loaded
    assert out.stdout.split() == ["False", "False"]


class FakeTracer:
    created: list[FakeTracer] = []

    def __init__(self, service: str) -> None:
        self.service = service
        self.annotations: list[tuple[str, Any]] = []
        self.captured: list[dict[str, Any]] = []
        FakeTracer.created.append(self)

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations.append((key, value))

    def capture_lambda_handler(self, handler: Any, **options: Any) -> Any:
        self.captured.append(options)

        def traced(event: Any, context: Any) -> Any:
            return ("traced", handler(event, context))

        return traced


@pytest.fixture
def fake_tracer(monkeypatch):
    import aws_lambda_powertools

    FakeTracer.created = []
    monkeypatch.setattr(aws_lambda_powertools, "Tracer", FakeTracer)
    return FakeTracer


def test_in_lambda_the_first_call_creates_the_tracer_and_traces_the_handler(monkeypatch, fake_tracer):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "f")
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    lazy = observability.LazyTracer(service="svc")

    @lazy.capture_lambda_handler(capture_response=False)
    def handler(event, context):
        lazy.put_annotation(key="job", value="update-user-streaks")
        return event["x"]

    assert fake_tracer.created == []  # nothing at decoration (import) time
    assert handler({"x": 1}, None) == ("traced", 1)
    assert handler({"x": 2}, None) == ("traced", 2)
    [tracer] = fake_tracer.created
    assert tracer.service == "svc"
    assert tracer.captured == [{"capture_response": False}]
    assert tracer.annotations == [("job", "update-user-streaks"), ("job", "update-user-streaks")]


@pytest.mark.parametrize("env", [{}, {"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_TRACE_DISABLED": "true"}])
def test_without_tracing_no_tracer_is_created_and_the_handler_runs_plain(monkeypatch, fake_tracer, env):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    lazy = observability.LazyTracer(service="svc")

    @lazy.capture_lambda_handler(capture_response=False)
    def handler(event, context):
        lazy.put_annotation(key="job", value="x")
        return event

    assert handler("e", None) == "e"
    assert fake_tracer.created == []
