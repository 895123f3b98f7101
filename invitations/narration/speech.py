"""Speech synthesis with espeak-ng (Debian's ``espeak-ng`` package; ``make test``
installs it): each segment is synthesised on its own, so its duration is measured, then
all are joined, with the style's pause between them, into one WAV file. Durations come
from the WAV headers (the ``wave`` module), never from estimates."""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .profiles import NarratorProfile


class SpeechError(Exception):
    """espeak-ng is missing or failed."""


@dataclass(frozen=True)
class SpokenSegment:
    text: str
    start: float
    duration: float


@dataclass(frozen=True)
class Recording:
    segments: list[SpokenSegment]
    duration: float  # seconds, of the whole file, from its header
    sample_rate: int


def _synthesise(text: str, profile: NarratorProfile, out: Path) -> None:
    command = [
        settings.NP_ESPEAK_BINARY, "-v", profile.voice, "-s", str(profile.speed),
        "-p", str(profile.pitch), "-w", str(out), "--", text,
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=120)
    except FileNotFoundError as exc:
        raise SpeechError(f"{settings.NP_ESPEAK_BINARY} is not installed") from exc
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise SpeechError(f"espeak-ng failed: {exc}") from exc


def wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def record(texts: list[str], profile: NarratorProfile, pause: float, out: Path) -> Recording:
    """Speak ``texts`` one after the other into the WAV file ``out``."""
    if not texts:
        raise SpeechError("nothing to say")
    spoken: list[SpokenSegment] = []
    with tempfile.TemporaryDirectory(prefix="np-narration-") as tmp:
        parts = []
        for n, text in enumerate(texts):
            part = Path(tmp) / f"{n}.wav"
            _synthesise(text, profile, part)
            parts.append(part)
        out.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(out), "wb") as joined:
            frames_written = 0
            rate = 0
            for n, (text, part) in enumerate(zip(texts, parts, strict=True)):
                with wave.open(str(part), "rb") as wav:
                    if n == 0:
                        joined.setparams(wav.getparams())
                        rate = wav.getframerate()
                    frames = wav.readframes(wav.getnframes())
                    count = wav.getnframes()
                    width = wav.getsampwidth() * wav.getnchannels()
                spoken.append(SpokenSegment(text, frames_written / rate, count / rate))
                joined.writeframes(frames)
                frames_written += count
                if n < len(texts) - 1 and pause > 0:
                    silence = int(round(pause * rate))
                    joined.writeframes(b"\x00" * silence * width)
                    frames_written += silence
    return Recording(segments=spoken, duration=wav_duration(out), sample_rate=rate)
