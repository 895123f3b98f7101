"""Validate a workflow's steps on save: every error names the step and field at fault
(``steps[2].window``) and says why, so the API answers 400 with that field.

The vocabulary (README "Workflows" has examples):

* ``channel``  — ``channel`` (or ``channels``), and ``template`` (a catalogue type) or
  ``title`` + ``message`` (``{{ var }}`` sources rendered with the trigger data and digest
  variables); optional ``category``, ``priority``, ``action_url``, ``metadata``,
  ``webhook_url`` (the webhook channel's endpoint).
* ``delay``    — ``duration`` (``90``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``) or ``until``
  (``"HH:MM"`` the next such time, in the user's timezone when ``timezone: "user"``).
* ``digest``   — ``window``, ``key`` (a data field, e.g. ``auction_id``), ``mode``
  (``fixed``/``sliding``), ``max_wait``, ``max_items``, ``item`` (a ``{{ var }}`` line per
  item), ``send_first``.
* ``throttle`` — ``limit``, ``window``, ``key``.
* ``branch``   — ``when``: ``unread``/``unclicked``/``unacked`` (of the notification of step
  ``step``, default the latest that sent one), ``preference`` (``channel``), ``data``
  (``field``, ``op``, ``value``).
* ``escalate`` — ``in_app`` (content), ``email_after`` + ``email`` (content), optional
  ``sms_after`` + ``sms`` (content), ``ack_required`` (default true), ``ack_timeout``
  (seconds between the real-time event's re-sends until acked, default 30).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from templates.rendering import TemplateError, compile_template

from .errors import INVALID_WORKFLOW, WorkflowError

STEP_TYPES = ("channel", "delay", "digest", "throttle", "branch", "escalate")
CHANNELS = ("email", "sms", "push", "in_app", "webhook")
BRANCH_WHEN = ("unread", "unclicked", "unacked", "preference", "data")
DATA_OPS = ("eq", "ne", "gt", "gte", "lt", "lte", "exists", "missing")
MAX_STEPS = 50
MAX_DURATION = timedelta(days=90)
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_ALLOWED = {
    "channel": {"type", "name", "channel", "channels", "template", "title", "message"}
    | {"category", "priority", "action_url", "metadata", "webhook_url"},
    "delay": {"type", "name", "duration", "until", "timezone"},
    "digest": {"type", "name", "window", "key", "mode", "max_wait", "max_items", "item"}
    | {"send_first"},
    "throttle": {"type", "name", "limit", "window", "key"},
    "branch": {"type", "name", "when", "step", "channel", "field", "op", "value"},
    "escalate": {"type", "name", "in_app", "email_after", "email", "sms_after", "sms"}
    | {"ack_required", "ack_timeout", "category", "priority", "action_url"},
}


def _fail(where: str, message: str) -> WorkflowError:
    return WorkflowError(INVALID_WORKFLOW, message, where)


def parse_duration(value: Any, where: str) -> timedelta:
    """Seconds as a number, or ``"<n>[s|m|h|d]"``; 0 < d <= 90 days."""
    if isinstance(value, bool):
        raise _fail(where, "must be seconds or a duration such as '30s', '5m', '2h', '1d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(int(match.group(1)) * _UNITS[match.group(2)])
    else:
        raise _fail(where, "must be seconds or a duration such as '30s', '5m', '2h', '1d'")
    if seconds <= 0 or timedelta(seconds=seconds) > MAX_DURATION:
        raise _fail(where, "must be more than 0 and at most 90 days")
    return timedelta(seconds=seconds)


def parse_clock(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, str) or not (match := _TIME_RE.match(value.strip())):
        raise _fail(where, "must be a time of day 'HH:MM'")
    return int(match.group(1)), int(match.group(2))


def _source(step: dict[str, Any], name: str, where: str, *, required: bool = True) -> None:
    value = step.get(name)
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{where}.{name}", "required: a non-empty text")
    try:
        compile_template(value)
    except TemplateError as exc:
        raise _fail(f"{where}.{name}", exc.message) from exc


def _content(step: Any, where: str) -> None:
    """``template`` or ``title`` + ``message`` (for a channel step or an escalation level)."""
    if not isinstance(step, dict):
        raise _fail(where, "must be an object with template, or title and message")
    if step.get("template") is not None:
        if not isinstance(step["template"], str) or not step["template"]:
            raise _fail(f"{where}.template", "must be a template (notification type) name")
        return
    _source(step, "title", where)
    _source(step, "message", where)


def _key(step: dict[str, Any], where: str) -> None:
    key = step.get("key")
    if key is not None and (not isinstance(key, str) or not key or len(key) > 100):
        raise _fail(f"{where}.key", "must be the name of a trigger data field, e.g. auction_id")


def _channel(step: dict[str, Any], where: str) -> None:
    channels = step.get("channels", [step["channel"]] if "channel" in step else None)
    if not isinstance(channels, list) or not channels:
        raise _fail(f"{where}.channel", f"required: one of {', '.join(CHANNELS)}")
    for channel in channels:
        if channel not in CHANNELS:
            raise _fail(f"{where}.channel", f"unknown channel {channel!r}")
    _content(step, where)
    if step.get("metadata") is not None and not isinstance(step["metadata"], dict):
        raise _fail(f"{where}.metadata", "must be an object")


def _delay(step: dict[str, Any], where: str) -> None:
    if ("duration" in step) == ("until" in step):
        raise _fail(where, "give exactly one of duration or until")
    if "duration" in step:
        parse_duration(step["duration"], f"{where}.duration")
    else:
        parse_clock(step["until"], f"{where}.until")
    if step.get("timezone", "user") not in ("user", "UTC"):
        raise _fail(f"{where}.timezone", "must be 'user' or 'UTC'")


def _digest(step: dict[str, Any], where: str) -> None:
    window = parse_duration(step.get("window"), f"{where}.window")
    if step.get("mode", "fixed") not in ("fixed", "sliding"):
        raise _fail(f"{where}.mode", "must be 'fixed' or 'sliding'")
    if "max_wait" in step and parse_duration(step["max_wait"], f"{where}.max_wait") < window:
        raise _fail(f"{where}.max_wait", "must be at least the window")
    max_items = step.get("max_items", 50)
    if isinstance(max_items, bool) or not isinstance(max_items, int) or not 1 <= max_items <= 500:
        raise _fail(f"{where}.max_items", "must be a whole number from 1 to 500")
    _key(step, where)
    _source(step, "item", where, required=False)
    if not isinstance(step.get("send_first", False), bool):
        raise _fail(f"{where}.send_first", "must be true or false")


def _throttle(step: dict[str, Any], where: str) -> None:
    limit = step.get("limit")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise _fail(f"{where}.limit", "required: a whole number of at least 1")
    parse_duration(step.get("window"), f"{where}.window")
    _key(step, where)


def _branch(step: dict[str, Any], where: str, index: int) -> None:
    when = step.get("when")
    if when not in BRANCH_WHEN:
        raise _fail(f"{where}.when", f"required: one of {', '.join(BRANCH_WHEN)}")
    ref = step.get("step")
    if ref is not None and (
        isinstance(ref, bool) or not isinstance(ref, int) or not 0 <= ref < index
    ):
        raise _fail(f"{where}.step", "must be the index of an earlier step")
    if when == "preference" and step.get("channel") not in CHANNELS:
        raise _fail(f"{where}.channel", f"required: one of {', '.join(CHANNELS)}")
    if when == "data":
        if not isinstance(step.get("field"), str) or not step["field"]:
            raise _fail(f"{where}.field", "required: a trigger data field name")
        if step.get("op", "eq") not in DATA_OPS:
            raise _fail(f"{where}.op", f"must be one of {', '.join(DATA_OPS)}")


def _escalate(step: dict[str, Any], where: str) -> None:
    _content(step.get("in_app"), f"{where}.in_app")
    parse_duration(step.get("email_after"), f"{where}.email_after")
    _content(step.get("email"), f"{where}.email")
    if "sms_after" in step or "sms" in step:
        parse_duration(step.get("sms_after"), f"{where}.sms_after")
        _content(step.get("sms"), f"{where}.sms")
    if not isinstance(step.get("ack_required", True), bool):
        raise _fail(f"{where}.ack_required", "must be true or false")
    timeout = step.get("ack_timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 3600:
        raise _fail(f"{where}.ack_timeout", "seconds between re-sends: 1 to 3600")


def steps_validate(steps: Any) -> list[dict[str, Any]]:
    """The steps, validated (raises WorkflowError naming ``steps[i].field``)."""
    if not isinstance(steps, list) or not steps:
        raise _fail("steps", "must be a non-empty list of steps")
    if len(steps) > MAX_STEPS:
        raise _fail("steps", f"at most {MAX_STEPS} steps")
    for index, step in enumerate(steps):
        where = f"steps[{index}]"
        if not isinstance(step, dict):
            raise _fail(where, "must be an object with a type")
        kind = step.get("type")
        if kind not in STEP_TYPES:
            raise _fail(f"{where}.type", f"must be one of {', '.join(STEP_TYPES)}")
        unknown = sorted(set(step) - _ALLOWED[kind])
        if unknown:
            raise _fail(f"{where}.{unknown[0]}", f"unknown field for a {kind} step")
        if kind == "channel":
            _channel(step, where)
        elif kind == "delay":
            _delay(step, where)
        elif kind == "digest":
            _digest(step, where)
        elif kind == "throttle":
            _throttle(step, where)
        elif kind == "branch":
            _branch(step, where, index)
        else:
            _escalate(step, where)
    return steps
