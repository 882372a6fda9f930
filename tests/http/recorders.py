"""Stand-ins for the decision log (service/decisions, built in parallel) that implement its Recorder protocol.

They are not mocks of code under test: the HTTP layer only sees the protocol of service.decide.Recorder.
"""

from __future__ import annotations

from typing import Any


class ListRecorder:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def record(
        self,
        decision: dict[str, Any],
        *,
        channel: str,
        profile: dict[str, Any],
        latency_ms: float,
        identifiers: dict[str, str] | None = None,
        cards: list[dict[str, Any]] | None = None,
    ) -> None:
        self.records.append({"decision": decision, "channel": channel, "profile": profile})

    def record_feedback(self, service_id: str, items: list[dict[str, Any]]) -> None:
        raise NotImplementedError


class BrokenRecorder(ListRecorder):
    """A store that fails the way a database does: its message quotes the row it could not write."""

    def __init__(self, fail_after: int = 0) -> None:
        super().__init__()
        self.fail_after = fail_after

    def record(self, decision: dict[str, Any], **kwargs: Any) -> None:
        if len(self.records) >= self.fail_after:
            raise OSError(f"could not write row: profile={kwargs['profile']!r}")
        super().record(decision, **kwargs)
