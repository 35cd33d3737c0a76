"""Parsing Lambda events: the scheduled event, the manual payloads, and everything refused."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from shared import registry
from shared.errors import ValidationError
from shared.events import Trigger, parse_event
from tests.factories import utc

EVENTS = Path(__file__).resolve().parent.parent / "events"
JOB = registry.get("update-user-streaks")
NOW = utc(2026, 11, 28, 12, 0)


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_scheduled_event_time_is_the_occurrence():
    request = parse_event(JOB, load("scheduled_event.json"), now=NOW)
    assert (request.as_of, request.trigger, request.explicit_as_of) == (utc(2026, 11, 28), Trigger.SCHEDULE, True)
    assert request.event_id == "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"


@pytest.mark.parametrize("stamp", ["2026-11-28T00:00:07Z", "2026-11-28T00:00:59.999Z", "2026-11-28T01:00:30+01:00"])
def test_scheduled_event_time_is_snapped_to_its_minute(stamp):
    for source in ("aws.events", "jobctl.scheduler"):
        event = {**load("scheduled_event.json"), "time": stamp, "source": source}
        assert parse_event(JOB, event, now=NOW).as_of == utc(2026, 11, 28)


def test_manual_as_of_is_not_snapped():
    request = parse_event(JOB, {"as_of": "2026-11-28T00:00:07Z"}, now=NOW)
    assert request.as_of == utc(2026, 11, 28, 0, 0, 7)


def test_local_scheduler_event_is_a_local_trigger():
    event = {**load("scheduled_event.json"), "source": "jobctl.scheduler"}
    assert parse_event(JOB, event, now=NOW).trigger is Trigger.LOCAL


def test_manual_payloads():
    now_run = parse_event(JOB, load("manual_run_now.json"), now=NOW)
    assert (now_run.as_of, now_run.trigger, now_run.explicit_as_of) == (NOW, Trigger.MANUAL, False)
    backfill = parse_event(JOB, load("manual_backfill.json"), now=NOW)
    assert (backfill.as_of, backfill.explicit_as_of, backfill.force) == (utc(2026, 11, 28), True, False)
    assert parse_event(JOB, load("manual_dry_run.json"), now=NOW).dry_run is True
    assert parse_event(JOB, load("manual_force_rerun.json"), now=NOW).force is True
    assert parse_event(JOB, None, now=NOW).as_of == NOW


def test_as_of_with_an_offset_is_converted_to_utc():
    request = parse_event(JOB, {"as_of": "2026-11-28T01:30:00+01:30"}, now=NOW)
    assert request.as_of == utc(2026, 11, 28, 0, 0)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"as_of": "yesterday"}, "as_of: Input should be a valid datetime"),
        ({"as_of": "2026-11-28T00:00:00"}, "give a UTC offset"),
        ({"as_of": "2026-11-28T12:06:00Z"}, "it is in the future"),
        ({"job": "x"}, "unknown field 'job'"),
        ({"dry_run": "yes"}, "dry_run: Input should be a valid boolean"),
        ({"force": 1}, "force: Input should be a valid boolean"),
        ([1, 2], "expected a JSON object, got list"),
        (
            {"detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-28T00:00:00Z"},
            "is not 'Scheduled Event'",
        ),
        (
            {"detail-type": "Scheduled Event", "source": "evil.source", "time": "2026-11-28T00:00:00Z"},
            "source 'evil.source' is not aws.events",
        ),
        ({"detail-type": "Scheduled Event", "source": "aws.events"}, "time: Field required"),
        ({"as_of": "1999-12-31T00:00:00Z"}, "before the year 2000"),
        ({"as_of": "0001-01-01T00:00:00+23:59"}, "out of range"),
    ],
)
def test_bad_events_are_refused_with_a_clear_message(event, message):
    with pytest.raises(ValidationError) as info:
        parse_event(JOB, event, now=NOW)
    assert message in str(info.value)


def test_small_clock_skew_is_tolerated():
    skewed = NOW + timedelta(minutes=4)
    assert parse_event(JOB, {"as_of": skewed.isoformat()}, now=NOW).as_of == skewed


def test_passwords_of_key_value_connection_strings_are_redacted_too():
    from shared.errors import redact, register_secret_url

    register_secret_url("host=db.example user=jobs password=KeyValue-S3cret dbname=app")
    assert "KeyValue-S3cret" not in redact("FATAL: bad password KeyValue-S3cret for user jobs")
