"""The invitee's pages, reached from the link in the invitation: no login, the signed
token is the credential. GET never changes state beyond recording the view (mail
scanners prefetch links), so accepting and declining are POSTs from the page's buttons;
GET on their URLs shows the same page."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import selectors, services
from .errors import INVITATION_NOT_FOUND, InvitationError
from .models import StoryInvitation

_AUDIO_NAME = re.compile(r"^[0-9a-f]{32}\.wav$")

HEADINGS = {
    "story_collaboration": "Story collaboration invitation",
    "news_feed": "News feed invitation",
    "roleplay_invitation": "Roleplay invitation",
}


def _page(
    request: HttpRequest, token: str, invitation: StoryInvitation | None, *,
    error: InvitationError | None = None, outcome: str | None = None, status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {"heading": "Invitation", "error": error, "outcome": outcome}
    if invitation is not None:
        context.update(
            heading=HEADINGS.get(invitation.invitation_type or "", "Invitation"),
            invitation=invitation,
            inviter_name=invitation.inviter.display_name or "Someone",
            content=invitation.content_metadata or {},
            can_answer=error is None and outcome is None and services.is_answerable(invitation),
            accept_path=f"/i/{token}/accept/",
            narration=selectors.narration_for_invitation(invitation),
            free_roles=_free_roles(invitation),
            decline_path=f"/i/{token}/decline/",
        )
    response = render(request, "invitations/invitation.html", context, status=status)
    response["Referrer-Policy"] = "no-referrer"  # keep the token out of other sites' logs
    return response


def _free_roles(invitation: StoryInvitation) -> list[str] | None:
    """The names of the roleplay's roles nobody has accepted yet (roleplay invitations)."""
    role = invitation.roleplay_character_role
    if role is None or role.roleplay_template is None:
        return None
    return [r.role_name for r in selectors.roles_free(role.roleplay_template)]


def _not_found(request: HttpRequest, token: str) -> HttpResponse:
    error = InvitationError(INVITATION_NOT_FOUND, "This invitation link is not valid.", status=404)
    return _page(request, token, None, error=error, status=404)


def _not_permitted(request: HttpRequest, token: str, invitation: StoryInvitation) -> HttpResponse | None:
    """The error page, showing nothing of the content, for an invitation its inviter had
    no right to make (``ownership``); None when it is a proper one."""
    try:
        services.invitation_check_permitted(invitation)
    except InvitationError as exc:
        return _page(request, token, None, error=exc, status=exc.status)
    return None


@never_cache
@require_http_methods(["GET", "HEAD"])
def invitation_page(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_get_by_token(token)
    if invitation is None:
        return _not_found(request, token)
    if (refused := _not_permitted(request, token, invitation)) is not None:
        return refused
    services.invitation_view(
        invitation=invitation, meta=services.RequestMeta.from_request(request)
    )
    return _page(request, token, invitation)


def _answer_page(request: HttpRequest, token: str, *, accept: bool) -> HttpResponse:
    invitation = selectors.invitation_get_by_token(token)
    if invitation is None:
        return _not_found(request, token)
    if (refused := _not_permitted(request, token, invitation)) is not None:
        return refused
    if request.method != "POST":
        return _page(request, token, invitation)
    answer = services.invitation_accept if accept else services.invitation_decline
    try:
        invitation = answer(invitation=invitation, meta=services.RequestMeta.from_request(request))
    except InvitationError as exc:
        invitation.refresh_from_db()
        return _page(request, token, invitation, error=exc, status=exc.status)
    return _page(request, token, invitation, outcome=invitation.status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_accept_page(request: HttpRequest, token: str) -> HttpResponse:
    return _answer_page(request, token, accept=True)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_decline_page(request: HttpRequest, token: str) -> HttpResponse:
    return _answer_page(request, token, accept=False)


@require_http_methods(["GET", "HEAD"])
def narration_audio(request: HttpRequest, name: str) -> FileResponse:
    """A narration's WAV file. Names are random (uuid4) and nothing else is served from
    the folder: no path can leave it."""
    if not _AUDIO_NAME.match(name):
        raise Http404("no such narration audio")
    path = settings.NP_NARRATION_AUDIO_DIR / name
    if not path.is_file():
        raise Http404("no such narration audio")
    response = FileResponse(path.open("rb"), content_type="audio/wav")
    response["Cache-Control"] = "public, max-age=86400, immutable"
    return response
