"""Shared Django Admin helpers.

- :class:`PrettyJSONWidget`: JSON columns edited as indented JSON in a monospace textarea
  (Django's default is one compact line, unreadable for provider responses).
- :class:`PrettyJSONMixin`: a JSON field listed in ``readonly_fields`` is shown as an
  indented ``<pre>`` block instead of Django's one-line ``json.dumps``.
- :class:`ReadOnlyTimestampsMixin`: ``created_at`` / ``updated_at`` shown read-only
  wherever the model has them, without every admin repeating them.
- :class:`NPModelAdmin`: the base every app's admin uses (both mixins).
- :class:`ReadOnlyModelAdmin`: for the unmanaged analytics-view models and append-only
  logs: browsable, never added to, changed or deleted from the admin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

if TYPE_CHECKING:
    # the mixins below are only ever mixed into ModelAdmin/InlineModelAdmin: type-check them
    # against the admin base they extend (at run time they stay plain mixins)
    _AdminBase = admin.options.BaseModelAdmin[Any]
else:
    _AdminBase = object

PRETTY_SUFFIX = "_pretty"
TIMESTAMP_FIELDS: tuple[str, ...] = ("created_at", "updated_at")


def pretty_json(value: Any) -> SafeString | str:
    """``value`` as indented JSON inside ``<pre>`` (escaped), or ``-`` for NULL."""
    if value is None:
        return "-"
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return format_html('<pre class="np-json" style="margin:0;white-space:pre-wrap">{}</pre>', text)


class PrettyJSONWidget(forms.Textarea):
    """A textarea that re-indents the compact JSON Django's ``JSONField`` hands it.

    Input that is not valid JSON (a bound form being redisplayed with its error) is
    shown exactly as typed so the user can fix it.
    """

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        base = {
            "rows": 8,
            "cols": 90,
            "class": "vLargeTextField np-json",
            "style": "font-family:monospace",
        }
        super().__init__(attrs={**base, **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, str) and value:
            try:
                return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
            except ValueError:
                return value
        return super().format_value(value)


def _json_display(field: models.JSONField) -> Callable[[models.Model], SafeString | str]:
    def display(obj: models.Model) -> SafeString | str:
        return pretty_json(getattr(obj, field.attname))

    display.short_description = field.verbose_name  # type: ignore[attr-defined]
    return display


class PrettyJSONMixin(_AdminBase):
    """Indented JSON for editing and for read-only display.

    A JSON field named in ``readonly_fields`` (or made read-only by
    ``get_readonly_fields``) is swapped for a ``<name>_pretty`` display, and the raw
    field is kept out of the form, so the change page shows a ``<pre>`` block.
    """

    model: type[models.Model]
    formfield_overrides: ClassVar[Mapping[type[models.Field], Mapping[str, Any]]] = {
        models.JSONField: {"widget": PrettyJSONWidget},
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._json_fields = {
            f.name for f in self.model._meta.concrete_fields if isinstance(f, models.JSONField)
        }
        for f in self.model._meta.concrete_fields:
            if isinstance(f, models.JSONField):
                setattr(self, f.name + PRETTY_SUFFIX, _json_display(f))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = super().get_readonly_fields(request, obj)
        return tuple(
            f + PRETTY_SUFFIX if isinstance(f, str) and f in self._json_fields else f
            for f in fields
        )

    def _pretty_names(self, request: HttpRequest, obj: Any) -> set[str]:
        return {
            f.removesuffix(PRETTY_SUFFIX)
            for f in self.get_readonly_fields(request, obj)
            if isinstance(f, str) and f.endswith(PRETTY_SUFFIX)
        }

    def _rename(self, fields: Sequence[Any], pretty: set[str]) -> list[Any]:
        """Field names (possibly grouped on one line as tuples) with read-only JSON
        fields swapped for their display."""
        return [
            self._rename(f, pretty)
            if isinstance(f, list | tuple)
            else f + PRETTY_SUFFIX
            if f in pretty
            else f
            for f in fields
        ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fields = super().get_fields(request, obj)
        return self._rename(fields, self._pretty_names(request, obj))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fieldsets = super().get_fieldsets(request, obj)
        pretty = self._pretty_names(request, obj)
        return [
            (title, {**options, "fields": self._rename(options["fields"], pretty)})
            for title, options in fieldsets
        ]

    def get_exclude(
        self, request: HttpRequest, obj: Any = None
    ) -> list[str] | tuple[str, ...] | None:
        excluded = super().get_exclude(request, obj)
        pretty = self._pretty_names(request, obj)
        if not pretty:
            return excluded
        return [*(excluded or ()), *sorted(pretty)]


class ReadOnlyTimestampsMixin(_AdminBase):
    """Adds the model's ``created_at`` / ``updated_at`` to the read-only fields."""

    model: type[models.Model]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = list(super().get_readonly_fields(request, obj))
        names = {f.name for f in self.model._meta.concrete_fields}
        fields += [t for t in TIMESTAMP_FIELDS if t in names and t not in fields]
        return tuple(fields)


class NPModelAdmin(PrettyJSONMixin, ReadOnlyTimestampsMixin, admin.ModelAdmin):
    """The project's admin base class."""

    list_per_page = 50
    show_full_result_count = False  # COUNT(*) on big tables on every page is wasted work


class NPTabularInline(PrettyJSONMixin, ReadOnlyTimestampsMixin, admin.TabularInline):
    extra = 0
    show_change_link = True


class ReadOnlyModelAdmin(NPModelAdmin):
    """Browse-only: every field read-only, no add, no change, no delete."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        names = [f.name for f in self.model._meta.concrete_fields]
        return tuple(n + PRETTY_SUFFIX if n in self._json_fields else n for n in names)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- console helpers (badges, small tables, per-row action outcomes) ---------------------

BADGE_COLOURS: dict[str, str] = {
    "ok": "#1e7b34",
    "warn": "#a15c00",
    "bad": "#b02a37",
    "off": "#5f6b77",
}


def badge(text: str, kind: str) -> SafeString:
    """A small coloured pill (``kind``: ok / warn / bad / off) for list and change pages."""
    colour = BADGE_COLOURS.get(kind, BADGE_COLOURS["off"])
    return format_html(
        '<span class="np-badge np-badge-{}" style="background:{};color:#fff;'
        'border-radius:8px;padding:1px 8px;font-size:11px;white-space:nowrap">{}</span>',
        kind,
        colour,
        text,
    )


def html_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, css: str = ""
) -> SafeString:
    """A plain escaped HTML table for read-only change-page fields (health history,
    attempts). Cells may be SafeStrings (badges); everything else is escaped."""
    from django.utils.html import format_html_join

    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", (("-" if c is None else c,) for c in row)),)
            for row in rows
        ),
    )
    return format_html(
        '<table class="np-table {}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        css,
        head,
        body,
    )


def run_per_row(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    rows: Any,
    operation: Callable[[Any], Any],
    *,
    errors: tuple[type[Exception], ...],
    done: str,
) -> tuple[int, list[str]]:
    """Apply ``operation`` to each row on its own (one transaction each, as the services
    do), so one row in the wrong state does not stop the others; report both outcomes."""
    from django.contrib import messages

    ok = 0
    refused: list[str] = []
    for row in rows:
        try:
            operation(row)
        except errors as exc:  # the service refused this row: tell the operator
            code = getattr(exc, "code", type(exc).__name__)
            refused.append(f"{row.pk}: {code} {getattr(exc, 'message', str(exc))}")
        else:
            ok += 1
    if ok:
        modeladmin.message_user(request, f"{ok} {done}.", messages.SUCCESS)
    if refused:
        modeladmin.message_user(
            request, f"{len(refused)} refused: " + "; ".join(refused[:10]), messages.WARNING
        )
    return ok, refused
