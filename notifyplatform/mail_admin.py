"""The admin's "Caught mail" page (``/admin/mail/``, staff only): the messages the local
SMTP sink (``notifyplatform.mailsink``, started by ``make run``) caught, newest first,
and each one's headers and bodies. Empty when no sink runs (``NP_MAIL_SINK_DIR`` unset)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from .mailsink import caught_mail, caught_one

PAGE_SIZE = 200


def _sink_dir() -> Path | None:
    return Path(settings.NP_MAIL_SINK_DIR) if settings.NP_MAIL_SINK_DIR else None


def mail_list_view(request: HttpRequest) -> HttpResponse:
    path = _sink_dir()
    context = {
        **admin.site.each_context(request),
        "title": "Caught mail",
        "sink_dir": path,
        "messages_caught": caught_mail(path, PAGE_SIZE) if path else [],
        "page_size": PAGE_SIZE,
    }
    return TemplateResponse(request, "admin_console/mail_list.html", context)


def mail_detail_view(request: HttpRequest, key: str) -> HttpResponse:
    path = _sink_dir()
    mail = caught_one(path, key) if path else None
    if mail is None:
        raise Http404("no such message")
    context = {
        **admin.site.each_context(request),
        "title": mail.subject or "(no subject)",
        "mail": mail,
    }
    return TemplateResponse(request, "admin_console/mail_detail.html", context)


mail_list = admin.site.admin_view(mail_list_view)
mail_detail = admin.site.admin_view(mail_detail_view)
