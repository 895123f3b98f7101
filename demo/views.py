"""The demo page (``/realtime/demo/``): a live auction board through the websocket client
(``realtime/client.js``) and the page's own ``demo/board.js``. It lives in the demo app
because it lists auctions, which ``realtime`` must not import.

Signed-in visitors see every bid as it happens and bid from the table (the auctions bid
API, with the session and its CSRF token); anonymous visitors see the public events
(auctions starting, ending, price clocks) and are told what signing in adds."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import render

from realtime import groups

from .board import board_rows

DEMO_PATH = "/realtime/demo/"
LOGIN_PATH = "/accounts/login/"


def login_url(next_path: str = DEMO_PATH) -> str:
    """The site's sign-in page, coming back to ``next_path``."""
    return f"{LOGIN_PATH}?{urlencode({'next': next_path}, safe='/')}"


def login_redirect(request: HttpRequest) -> HttpResponse:
    """The former demo sign-in page: to the site's one, keeping ``next`` (which the login
    view checks is a local address before following it)."""
    return HttpResponseRedirect(login_url(request.GET.get("next") or DEMO_PATH))


def demo(request: HttpRequest) -> HttpResponse:
    """Subscribes to the listed auctions' topics, ``system``, ``auctions`` and any
    ``?topics=a,b`` given (invalid names are dropped)."""
    rows = board_rows()
    extra = [t for t in request.GET.get("topics", "").split(",") if groups.is_valid_topic(t)]
    topics = list(
        dict.fromkeys(
            [groups.auction_topic(row.id) for row in rows] + ["system", "auctions", *extra]
        )
    )
    signed_in = bool(request.user.is_authenticated)
    config = {
        "topics": topics,
        "signedIn": signed_in,
        "csrfToken": get_token(request) if signed_in else "",
        "titles": {row.id: row.title for row in rows},
    }
    context = {"auctions": rows, "topics": topics, "signed_in": signed_in, "config": config,
               "login_url": login_url(), "demo_path": DEMO_PATH}
    return render(request, "demo/realtime.html", context)
