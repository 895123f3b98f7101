"""``GET /c/<token>/``: follow a tracked link (see ``services/clicks.py``)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ..services.clicks import notification_click_by_token


@never_cache
@require_GET
def follow_click(request: HttpRequest, token: str) -> HttpResponseRedirect:
    """Record the click and redirect (302) to the notification's own action URL; a forged,
    tampered or expired token, or a notification without an action URL, is 404."""
    clicked = notification_click_by_token(token)
    if clicked is None:
        raise Http404("No such link.")
    _notification, target = clicked
    response = HttpResponseRedirect(target)
    # The token stays ours: the action's host does not see it in a Referer header.
    response["Referrer-Policy"] = "no-referrer"
    return response
