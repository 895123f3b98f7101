"""routing.for_message: a provider is offered only messages it can carry (providers.features)."""

from __future__ import annotations

from providers import features
from providers.routing import candidates, for_message


def names(providers):
    return [p.provider_name for p in providers]


def _email_providers(make_provider):
    make_provider(
        provider_name="plain-only",
        provider_type="email",
        provider_class="console",
        priority=1,
        supported_features={"html": False, "receipts": True},
    )
    make_provider(
        provider_name="rich",
        provider_type="email",
        provider_class="console",
        priority=5,
        supported_features={"html": True},
    )
    make_provider(provider_name="undeclared", provider_type="email", provider_class="console")


def test_html_email_skips_a_provider_without_html_and_names_it(make_provider, outbound):
    _email_providers(make_provider)
    routed = candidates(channel="email")
    assert names(routed) == ["plain-only", "rich", "undeclared"]

    message = outbound(channel="email", recipient="a@example.test", html="<p>Hi</p>")
    capable, skipped = for_message(message, routed)

    assert names(capable) == ["rich", "undeclared"]  # order kept; absent key = supported
    assert skipped == [{"provider": "plain-only", "missing": ["html"]}]


def test_plain_text_email_still_uses_it(make_provider, outbound):
    _email_providers(make_provider)
    message = outbound(channel="email", recipient="a@example.test", html=None)
    capable, skipped = for_message(message, candidates(channel="email"))
    assert names(capable) == ["plain-only", "rich", "undeclared"]
    assert skipped == []


def test_no_capable_provider_leaves_none(make_provider, outbound):
    make_provider(
        provider_name="plain-only",
        provider_type="email",
        provider_class="console",
        supported_features={"html": False},
    )
    message = outbound(channel="email", recipient="a@example.test", html="<p>Hi</p>")
    capable, skipped = for_message(message, candidates(channel="email"))
    assert capable == []
    assert skipped == [{"provider": "plain-only", "missing": ["html"]}]


def test_needs_per_message(outbound):
    assert features.needed(outbound(channel="email", html="<p>x</p>")) == ["html"]
    assert features.needed(outbound(channel="email", html=None)) == []
    # HTML on a non-email channel is not used, so not needed
    assert features.needed(outbound(channel="webhook")) == []
    rich = {"rich_content": {"image": "https://x.test/i.png", "buttons": [{"label": "Go"}]}}
    assert features.needed(
        outbound(channel="push", html=None, data={**rich, "attachments": ["a.pdf"]})
    ) == ["attachments", "images", "actions"]
    assert features.needed(outbound(channel="push", html=None, data={"action_url": "/x"})) == [
        "actions"
    ]
    # an email carries its action as a link in the body: no "actions" needed
    assert features.needed(outbound(channel="email", html=None, data={"action_url": "/x"})) == []


def test_only_an_explicit_false_refuses():
    assert features.lacking(None, ["html"]) == []
    assert features.lacking({}, ["html"]) == []
    assert features.lacking({"html": True}, ["html"]) == []
    assert features.lacking({"html": "no"}, ["html"]) == []
    assert features.lacking({"html": False, "images": False}, ["html", "images"]) == [
        "html",
        "images",
    ]
