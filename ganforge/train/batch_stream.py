"""The trainer's view of a data set's batch stream: it counts batches so that any stream resumes.

A built-in stream saves its own position (:class:`ganforge.data.base.EpochBatches`); a plugin's
plain generator function cannot be saved, so it is replayed on resume instead: the data generator
goes back to its first state and the stream is advanced by as many batches as the run had drawn.
Both give the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast

import torch

from ganforge.data.base import Batch


class _SavesItself(Protocol):
    def state_dict(self) -> Any: ...
    def load_state_dict(self, state: Any) -> None: ...


class ResumableBatches:
    def __init__(self, stream: Iterator[Batch], generator: torch.Generator) -> None:
        self.stream, self.generator = stream, generator
        self.first_rng = generator.get_state()
        self.drawn = 0

    def __iter__(self) -> ResumableBatches:
        return self

    def __next__(self) -> Batch:
        batch = next(self.stream)
        self.drawn += 1
        return batch

    @property
    def saves_itself(self) -> bool:
        return hasattr(self.stream, "state_dict") and hasattr(self.stream, "load_state_dict")

    def state_dict(self) -> dict[str, Any]:
        stream = cast(_SavesItself, self.stream).state_dict() if self.saves_itself else None
        return {"drawn": self.drawn, "stream": stream}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Call on a fresh stream, before it has drawn a batch."""
        drawn = int(state["drawn"])
        if self.saves_itself and state.get("stream") is not None:
            cast(_SavesItself, self.stream).load_state_dict(state["stream"])
        else:
            self.generator.set_state(self.first_rng)
            for _ in range(drawn):
                next(self.stream)
        self.drawn = drawn
