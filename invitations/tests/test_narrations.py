"""News narrations with real audio: espeak-ng speaks each segment, the joined WAV file is
stored and served at ``audio_file_url``, ``total_duration`` is measured from it and the
segments' timings add up to it; the rendering runs on a real Celery worker, and the
invitation page of a news-feed invitation plays it."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from invitations.models import NewsNarration
from invitations.narration import script
from invitations.services import invitation_create, narration_render, narration_request
from invitations.tests.conftest import wait_for
from invitations.tokens import token_sign

pytestmark = [pytest.mark.django_db, pytest.mark.urls("invitations.tests.urls")]

BODY = (
    "The city's new library opens on Monday with 40,000 books. The mayor will cut the "
    "ribbon at nine. Children get a free card! Will the café stay open late? "
    "Officials say yes."
)


@pytest.fixture
def audio_dir(tmp_path, settings, monkeypatch):
    folder = tmp_path / "narrations"
    settings.NP_NARRATION_AUDIO_DIR = folder
    monkeypatch.setenv("NP_NARRATION_AUDIO_DIR", str(folder))  # for worker subprocesses
    return folder


@pytest.fixture
def long_article():
    from invitations.services import article_create

    return article_create(title="Library opens", summary="A new library.", full_content=BODY)


def test_sentences_and_groups():
    said = script.article_text("Library opens", "ignored", BODY)
    assert said == [
        "Library opens.",
        "The city's new library opens on Monday with 40,000 books.",
        "The mayor will cut the ribbon at nine.",
        "Children get a free card!",
        "Will the café stay open late?",
        "Officials say yes.",
    ]
    assert [len(g) for g in script.group(said, 4)] == [4, 2]
    # no full content: the summary is read
    assert script.article_text("T", "Only this. And that.", None) == ["T.", "Only this.", "And that."]


def test_a_narration_has_real_audio_whose_duration_matches_its_segments(
    long_article, inviter, audio_dir, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        narration = narration_request(
            article=long_article, user=inviter, narrator_profile="anchor",
            conversation_style="neutral",
        )
    assert len(queued) == 1  # the rendering is queued, not done on the request path
    assert narration.segments is None and narration.narration_metadata == {"status": "pending"}

    rendered = narration_render(narration_id=narration.pk)
    assert rendered is not None
    rendered.refresh_from_db()
    meta = rendered.narration_metadata
    assert meta["status"] == "ready", meta
    # the file exists, is a WAV, and is what the URL names
    path = audio_dir / meta["audio_file"]
    assert rendered.audio_file_url == f"/media/narrations/{meta['audio_file']}"
    assert path.read_bytes()[:4] == b"RIFF" and path.read_bytes()[8:12] == b"WAVE"
    with wave.open(str(path)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert seconds > 2
    assert meta["duration_seconds"] == pytest.approx(seconds, abs=0.01)
    assert rendered.total_duration == round(seconds)
    # neutral style: two sentences a segment, six sentences → three segments
    segments = rendered.segments
    assert [s["sentence_count"] for s in segments] == [2, 2, 2]
    assert segments[0]["text"].startswith("Library opens. The city's")
    assert all(s["speaker"] == "anchor" and s["duration"] > 0.3 for s in segments)
    # timed in order, with the style's pause between segments, ending with the file
    pause = meta["pause_seconds"]
    for before, after in zip(segments, segments[1:], strict=False):
        assert after["start"] == pytest.approx(before["end"] + pause, abs=0.01)
    spoken = sum(s["duration"] for s in segments) + pause * (len(segments) - 1)
    assert spoken == pytest.approx(seconds, abs=0.05)
    assert segments[-1]["end"] == pytest.approx(seconds, abs=0.01)
    # a second run does not render again
    assert narration_render(narration_id=narration.pk) is None


def test_a_render_left_behind_by_a_dead_worker_is_taken_over(long_article, audio_dir):
    from datetime import timedelta

    from django.utils import timezone

    narration = narration_request(article=long_article, user=None, narrator_profile="brisk")
    recent = {"status": "rendering", "rendering_since": timezone.now().isoformat()}
    NewsNarration.objects.filter(pk=narration.pk).update(narration_metadata=recent)
    assert narration_render(narration_id=narration.pk) is None  # someone is on it
    stale = timezone.now() - timedelta(minutes=11)
    NewsNarration.objects.filter(pk=narration.pk).update(
        narration_metadata={"status": "rendering", "rendering_since": stale.isoformat()}
    )
    taken_over = narration_render(narration_id=narration.pk)
    assert taken_over is not None and taken_over.narration_metadata["status"] == "ready"


def test_style_and_voice_shape_the_recording(long_article, audio_dir):
    def render(profile, style):
        n = narration_request(article=long_article, user=None, narrator_profile=profile,
                              conversation_style=style)
        return narration_render(narration_id=n.pk)

    dramatic = render("anchor", "dramatic")
    brisk = render("brisk", "dramatic")
    assert len(dramatic.segments) == 6  # one sentence a segment
    # the same words, faster voice: shorter
    assert brisk.narration_metadata["duration_seconds"] < dramatic.narration_metadata[
        "duration_seconds"
    ]


def test_the_audio_is_served_and_other_names_are_not(client, long_article, audio_dir):
    narration = narration_request(article=long_article, user=None, narrator_profile="anchor")
    narration = narration_render(narration_id=narration.pk)
    response = client.get(narration.audio_file_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert b"".join(response.streaming_content)[:4] == b"RIFF"
    assert client.get("/media/narrations/../../settings.py").status_code == 404
    assert client.get("/media/narrations/" + "0" * 32 + ".wav").status_code == 404


def test_a_missing_engine_fails_the_narration_clearly(long_article, audio_dir, settings):
    settings.NP_ESPEAK_BINARY = "/nonexistent/espeak-ng"
    narration = narration_request(article=long_article, user=None, narrator_profile="anchor")
    failed = narration_render(narration_id=narration.pk)
    assert failed.narration_metadata["status"] == "failed"
    assert "not installed" in failed.narration_metadata["error"]
    assert failed.audio_file_url is None


def test_the_invitation_page_plays_the_narration(client, inviter, long_article, audio_dir):
    narration = narration_request(article=long_article, user=inviter, narrator_profile="bright")
    narration = narration_render(narration_id=narration.pk)
    invitation = invitation_create(
        inviter=inviter, invitation_type="news_feed", invitee_email="gil@example.test",
        article=long_article, narration=narration,
    )
    page = client.get(f"/i/{token_sign(invitation.token)}/").content.decode()
    assert f'<audio id="narration-audio" controls preload="metadata" src="{narration.audio_file_url}">' in page
    assert "to listen to" in page
    assert "Officials say yes." in page
    # the token API tells the same
    body = client.get(f"/api/v1/invitations/by-token/{token_sign(invitation.token)}/").json()
    assert body["narration"]["audio_file_url"] == narration.audio_file_url
    assert body["narration"]["total_duration"] == narration.total_duration
    assert body["free_roles"] is None


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_renders_a_narration_asked_for_over_the_api(
    api_client, inviter, long_article, audio_dir, celery_worker_process
):
    api_client.force_authenticate(inviter)
    response = api_client.post(
        "/api/v1/news-narrations/",
        {"article": long_article.pk, "narrator_profile": "storyteller",
         "conversation_style": "formal"},
        format="json",
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    pk = response.json()["id"]

    def ready():
        n = NewsNarration.objects.get(pk=pk)
        return n if (n.narration_metadata or {}).get("status") == "ready" else None

    narration = wait_for(ready, timeout=60)
    assert narration is not None, NewsNarration.objects.get(pk=pk).narration_metadata
    assert Path(audio_dir / narration.narration_metadata["audio_file"]).is_file()
    assert [s["sentence_count"] for s in narration.segments] == [3, 3]  # formal: three
    body = api_client.get(f"/api/v1/news-narrations/{pk}/").json()
    assert body["status"] == "ready" and body["total_duration"] == narration.total_duration
