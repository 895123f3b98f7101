"""What one chunk did: counted by the handlers, recorded by the runner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChunkOutcome:
    processed: int = 0
    successful: int = 0
    failed: int = 0
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)
    total_delta: int = 0  # cleanup: what a step actually did minus what was planned

    def fail(self, code: str, message: str, count: int = 1) -> None:
        self.processed += count
        self.failed += count
        entry = self.errors.setdefault(code, {"count": 0, "message": message})
        entry["count"] += count

    def succeed(self, count: int = 1) -> None:
        self.processed += count
        self.successful += count
