"""What a data set gives the trainer: batches, real samples for evaluation, and its shape."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DataInfo:
    """What models need to know about the data, stored in config.json so runs rebuild alone.

    ``value_range`` is the closed range samples live in (``None``: unbounded, e.g. 2-D mixtures);
    generators match their output activation to it. ``modality`` is ``"image"`` (``sample_shape``
    is ``(C, H, W)``) or ``"points"`` (``(D,)``), which picks how samples are drawn.
    """

    sample_shape: tuple[int, ...]
    value_range: tuple[float, float] | None
    modality: str

    @classmethod
    def from_dict(cls, data: dict) -> DataInfo:
        vr = data.get("value_range")
        return cls(tuple(data["sample_shape"]), tuple(vr) if vr is not None else None, data["modality"])


class GanDataset(ABC):
    """A source of real samples. Subclasses are cheap to build and hold data in memory."""

    info: DataInfo

    @abstractmethod
    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """An endless stream of training batches of shape ``(batch_size, *sample_shape)``."""

    @abstractmethod
    def real_samples(self, n: int, generator: torch.Generator, split: str = "test") -> torch.Tensor:
        """Up to ``n`` distinct real samples (fewer when the data set is smaller), for evaluation and
        plots, from held-out data where there is any."""


class TensorDataset(GanDataset):
    """A fixed set of samples held in memory, reshuffled every epoch with the run's generator."""

    def __init__(self, train: torch.Tensor, test: torch.Tensor, info: DataInfo) -> None:
        self.train, self.test, self.info = train, test, info

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        n = len(self.train)
        if batch_size > n:
            from ganforge.errors import ConfigError

            raise ConfigError(f"--batch-size {batch_size} is larger than the data set ({n} samples)")
        while True:
            order = torch.randperm(n, generator=generator)
            for start in range(0, n - batch_size + 1, batch_size):  # drop the ragged last batch
                yield self.train[order[start : start + batch_size]]

    def real_samples(self, n: int, generator: torch.Generator, split: str = "test") -> torch.Tensor:
        """``split``: "test" (held out; the training set if there is none), "train" or "all"."""
        if split == "all":
            pool = torch.cat([self.train, self.test]) if len(self.test) else self.train
        else:
            pool = self.test if split == "test" and len(self.test) else self.train
        return pool[torch.randperm(len(pool), generator=generator)[:n]]  # never duplicates: at most len(pool)


class SampledDataset(GanDataset):
    """A distribution sampled fresh for every batch (the 2-D mixtures): no epochs, no test split."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` fresh samples."""

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        while True:
            yield self.sample(batch_size, generator)

    def real_samples(self, n: int, generator: torch.Generator, split: str = "test") -> torch.Tensor:
        return self.sample(n, generator)
