"""The end-user preference page: ``/preferences/`` (the signed-in user) and ``/p/<token>/``
(the signed link in every email's footer, no login; ``deliveries/preference_links.py``).

A plain HTML form (no JavaScript): per channel a fieldset with a checkbox per notification
type, quiet hours with a time zone and a frequency cap; the user's devices, each with its own
small "Remove" form. It reads and writes through ``services/preference_page.py`` (which calls
the same preference services as the REST API). Bad input re-renders the page with 400 and the
errors beside their fields; a good save redirects (POST/redirect/GET) with "Saved".

CSRF: both variants use Django's CSRF protection (cookie + form token, set by the GET that
renders the form), so a third-party page cannot make a visitor's browser post to it. The
token page acts only for the user its link names (never the session's user) and is sent
with ``Referrer-Policy: same-origin`` (the link never leaves in a Referer to another site;
``no-referrer`` would make browsers send ``Origin: null``, which Django's CSRF check refuses)
and ``Cache-Control: no-store``. A forged link is 404, an expired one 410, each with a page
that says so.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from ..models import FrequencyPeriod
from ..preference_links import TokenProblem, preference_token_resolve
from ..services.preference_page import (
    PreferencePageError,
    preference_page_remove_device,
    preference_page_save,
    preference_page_state,
)

PAGE = "deliveries/preference_page.html"
LINK_ERROR = "deliveries/preference_link_error.html"


@functools.cache
def _timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


class ChannelSettingsForm(forms.Form):
    """Parses one channel's settings (types only; the rules are the service's)."""

    quiet_hours_start = forms.TimeField(
        required=False, label="Quiet from", widget=forms.TimeInput(attrs={"type": "time"})
    )
    quiet_hours_end = forms.TimeField(
        required=False, label="Quiet until", widget=forms.TimeInput(attrs={"type": "time"})
    )
    timezone = forms.CharField(required=False, max_length=50, label="Time zone")
    frequency_limit = forms.IntegerField(
        required=False, min_value=0, max_value=2_147_483_647, label="At most (messages)"
    )
    frequency_period = forms.ChoiceField(choices=FrequencyPeriod.choices, label="per")


def _forms(request: HttpRequest, state: Any) -> dict[str, ChannelSettingsForm]:
    if request.method == "POST":
        return {
            c.channel: ChannelSettingsForm(request.POST, prefix=c.channel) for c in state.channels
        }
    return {
        c.channel: ChannelSettingsForm(initial=c.settings, prefix=c.channel) for c in state.channels
    }


def _enabled_from_post(request: HttpRequest, state: Any) -> set[tuple[str, str]]:
    known = {(t, c.channel) for c in state.channels for t in state.types}
    chosen = set()
    for value in request.POST.getlist("on"):
        type_name, _sep, channel = value.rpartition(":")
        if (type_name, channel) in known:
            chosen.add((type_name, channel))
    return chosen


def _render(
    request: HttpRequest,
    user: Any,
    *,
    state: Any = None,
    forms_by_channel: dict[str, ChannelSettingsForm] | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    state = state or preference_page_state(user)
    forms_by_channel = forms_by_channel or _forms(request, state)
    if request.method == "POST" and status != 200:
        posted = _enabled_from_post(request, state)  # show what was submitted, not the rows
        for channel in state.channels:
            channel.enabled = {t: (t, channel.channel) in posted for t in state.types}
    sections = [(c, forms_by_channel[c.channel]) for c in state.channels]
    context = {
        "subject": user,
        "state": state,
        "sections": sections,
        "errors": errors or [],
        "saved": request.GET.get("saved") == "1",
        "removed": request.GET.get("removed") == "1",
        "timezones": _timezones(),
        "signed_in": request.user.is_authenticated and request.user.pk == user.pk,
    }
    return TemplateResponse(request, PAGE, context, status=status)


def _handle(request: HttpRequest, user: Any) -> HttpResponse:
    if request.method != "POST":
        return _render(request, user)
    here = request.path
    if request.POST.get("action") == "remove-device":
        try:
            device_id = int(request.POST.get("device", ""))
        except ValueError:
            device_id = 0
        if not preference_page_remove_device(user=user, device_id=device_id):
            return _render(request, user, errors=["No such device."], status=404)
        return HttpResponseRedirect(f"{here}?removed=1")
    state = preference_page_state(user)
    forms_by_channel = _forms(request, state)
    messages: list[str] = []
    if all(form.is_valid() for form in forms_by_channel.values()):
        settings_by_channel = {
            channel: {**form.cleaned_data, "timezone": form.cleaned_data["timezone"] or None}
            for channel, form in forms_by_channel.items()
        }
        try:
            preference_page_save(
                user=user,
                settings_by_channel=settings_by_channel,
                enabled=_enabled_from_post(request, state),
            )
            return HttpResponseRedirect(f"{here}?saved=1")
        except PreferencePageError as exc:
            for key, message in exc.errors.items():
                channel, _sep, name = key.partition("-")
                forms_by_channel[channel].add_error(
                    name if name in ChannelSettingsForm.base_fields else None, message
                )
    for channel, form in forms_by_channel.items():
        for name, field_errors in form.errors.items():
            label = form.fields[name].label if name in form.fields else "settings"
            messages.extend(f"{channel}: {label}: {e}" for e in field_errors)
    return _render(
        request,
        user,
        state=state,
        forms_by_channel=forms_by_channel,
        errors=messages,
        status=400,
    )


@never_cache
@login_required(login_url="users-login")
@require_http_methods(["GET", "POST"])
def session_page(request: HttpRequest) -> HttpResponse:
    return _handle(request, request.user)


def _link_error(request: HttpRequest, problem: str, status: int) -> HttpResponse:
    response = TemplateResponse(request, LINK_ERROR, {"problem": problem}, status=status)
    response["Referrer-Policy"] = "same-origin"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def token_page(request: HttpRequest, token: str) -> HttpResponse:
    resolved = preference_token_resolve(token)
    if resolved is TokenProblem.EXPIRED:
        return _link_error(request, "expired", 410)
    if isinstance(resolved, TokenProblem):
        return _link_error(request, "invalid", 404)
    try:
        user = get_user_model().objects.filter(pk=resolved, is_active=True).first()
    except (ValidationError, ValueError):
        user = None
    if user is None:
        return _link_error(request, "invalid", 404)
    response = _handle(request, user)
    response["Referrer-Policy"] = "same-origin"
    return response
