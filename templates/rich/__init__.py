"""Rich content (image, buttons, large text, HTML block): the schema (``schema``), a
template's ``rich_content_template`` with variables (``variables``) and what each channel
carries or drops (``channels``)."""

from .channels import data_rich, dropped_parts, email_html, email_text, sms_text
from .schema import RichContentError, own_urls, validate_rich_content
from .variables import render_rich_template, rich_template_problems

__all__ = [
    "RichContentError",
    "data_rich",
    "dropped_parts",
    "email_html",
    "email_text",
    "own_urls",
    "render_rich_template",
    "rich_template_problems",
    "sms_text",
    "validate_rich_content",
]
