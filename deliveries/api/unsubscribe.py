"""``/u/<token>/``: one-click unsubscribe (RFC 8058). ``POST`` (CSRF-exempt, no login: the
mail provider or the user's mail client posts ``List-Unsubscribe=One-Click``) opts out and
answers 200; ``GET`` shows a confirmation page whose button posts (no JavaScript). A forged
token is 404."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.html import format_html
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..services.unsubscribe import unsubscribe_by_token, unsubscribe_target

_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Unsubscribe</title></head>"
    "<body>{}</body></html>"
)


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST":
        done = unsubscribe_by_token(token)
        if done is None:
            raise Http404("No such link.")
        if done.address is not None:  # an address-only recipient: the address is suppressed
            body = format_html(
                "<p>{} will no longer receive {} notifications by {}.</p>",
                done.address,
                done.category or "any",
                done.channel,
            )
        else:
            body = format_html(
                "<p>You will no longer receive <b>{}</b> notifications by {}.</p>",
                done.type_name,
                done.channel,
            )
        return HttpResponse(format_html(_PAGE, body))
    target = unsubscribe_target(token)
    if target is None:
        raise Http404("No such link.")
    type_name, channel = target.type_name, target.channel
    if target.address is not None:
        type_name = target.category or "any"
    body = format_html(
        "<p>Stop receiving <b>{}</b> notifications by {}?</p>"
        "<form method='post' action=''>"
        "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
        "<button type='submit'>Unsubscribe</button></form>",
        type_name,
        channel,
    )
    return HttpResponse(format_html(_PAGE, body))
