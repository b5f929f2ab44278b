"""What a data set gives the trainer: batches, real samples for evaluation, and its shape."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload

import torch

from ganforge.errors import ConfigError

Batch = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
"""A training batch: samples, or ``(samples, labels)`` from a labelled stream."""

BatchT = TypeVar("BatchT", torch.Tensor, tuple[torch.Tensor, torch.Tensor])


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form config.json keeps (read back by :meth:`from_dict`)."""
        return {"sample_shape": list(self.sample_shape),
                "value_range": list(self.value_range) if self.value_range else None,
                "modality": self.modality}

    @classmethod
    def from_dict(cls, data: dict) -> DataInfo:
        vr = data.get("value_range")
        return cls(tuple(data["sample_shape"]), tuple(vr) if vr is not None else None, data["modality"])


class GanDataset(ABC):
    """A source of real samples. Subclasses are cheap to build and hold data in memory."""

    info: DataInfo

    @abstractmethod
    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """An endless stream of training batches of shape ``(batch_size, *sample_shape)``.

        For an exact ``--resume`` the stream must depend only on ``generator``. A stream that also
        has ``state_dict()`` / ``load_state_dict(state)`` (as the built-in ones do) is restored
        from its state; any other is replayed: the trainer redraws, and drops, as many batches as
        the run had drawn."""

    @abstractmethod
    def real_samples(self, n: int, generator: torch.Generator, split: str = "test") -> torch.Tensor:
        """Up to ``n`` distinct real samples (fewer when the data set is smaller), for evaluation and
        plots, from held-out data where there is any."""

    @property
    def labels(self) -> torch.Tensor | None:
        """The training samples' integer class labels, or ``None`` (the default) when the data set
        has none. A data set with labels also offers :meth:`labelled_batches`."""
        return None

    def labelled_batches(
        self, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """An endless stream of ``(samples, labels)`` for class-conditional training, under the
        same rules as :meth:`batches`. A data set whose :attr:`labels` are set but which does not
        override this cannot be trained class-conditionally: say so, with the fix, not a traceback."""
        if self.labels is None:
            raise ConfigError(f"data set {type(self).__name__} has no labels; drop --set disc.classes and "
                              f"gen.classes, or use data with labels")
        raise ConfigError(f"data set {type(self).__name__} has labels but no labelled_batches(); a data set "
                          f"for class-conditional training implements labelled_batches(batch_size, generator) "
                          f"(or derives from ganforge.data.TensorDataset, which does); without it, drop "
                          f"--set disc.classes and gen.classes")


class TensorDataset(GanDataset):
    """A fixed set of samples held in memory, reshuffled every epoch with the run's generator."""

    def __init__(self, train: torch.Tensor, test: torch.Tensor, info: DataInfo,
                 train_labels: torch.Tensor | None = None) -> None:
        self.train, self.test, self.info = train, test, info
        self.train_labels = train_labels

    @property
    def labels(self) -> torch.Tensor | None:
        return self.train_labels

    def batches(self, batch_size: int, generator: torch.Generator) -> EpochBatches[torch.Tensor]:
        self._check_batch_size(batch_size)
        return EpochBatches(self.train, batch_size, generator)

    def labelled_batches(self, batch_size: int,
                         generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Like :meth:`batches` (the very same order of samples), each batch with its labels."""
        if self.train_labels is None:
            return super().labelled_batches(batch_size, generator)
        self._check_batch_size(batch_size)
        return EpochBatches(self.train, batch_size, generator, labels=self.train_labels)

    def _check_batch_size(self, batch_size: int) -> None:
        n = len(self.train)
        if batch_size > n:
            from ganforge.errors import ConfigError

            raise ConfigError(f"--batch-size {batch_size} is larger than the data set ({n} samples)")

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

    def batches(self, batch_size: int, generator: torch.Generator) -> SampledBatches:
        return SampledBatches(self, batch_size, generator)

    def real_samples(self, n: int, generator: torch.Generator, split: str = "test") -> torch.Tensor:
        return self.sample(n, generator)


class EpochBatches(Generic[BatchT]):
    """Batches of a fixed set, reshuffled every epoch with ``generator``; the ragged last batch of
    an epoch is dropped. Its state, the generator's state when the epoch's order was drawn and the
    position in that order, lets a resumed run continue mid-epoch with the very same batches."""

    @overload
    def __init__(self: EpochBatches[torch.Tensor], samples: torch.Tensor, batch_size: int,
                 generator: torch.Generator, labels: None = None) -> None: ...
    @overload
    def __init__(self: EpochBatches[tuple[torch.Tensor, torch.Tensor]], samples: torch.Tensor, batch_size: int,
                 generator: torch.Generator, labels: torch.Tensor) -> None: ...
    def __init__(self, samples: torch.Tensor, batch_size: int, generator: torch.Generator,
                 labels: torch.Tensor | None = None) -> None:
        self.samples, self.batch_size, self.generator = samples, batch_size, generator
        self.labels = labels  # given: batches are (samples, labels) pairs
        self.order: torch.Tensor | None = None
        self.epoch_rng = generator.get_state()
        self.position = 0

    def __iter__(self) -> EpochBatches[BatchT]:
        return self

    def __next__(self) -> BatchT:
        if self.order is None or self.position + self.batch_size > len(self.samples):
            self.epoch_rng = self.generator.get_state()
            self.order = torch.randperm(len(self.samples), generator=self.generator)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return cast(BatchT, self.samples[index] if self.labels is None else (self.samples[index], self.labels[index]))

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_rng": self.epoch_rng, "position": self.position, "started": self.order is not None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order = None
        self.position = 0
        if state["started"]:
            self.generator.set_state(state["epoch_rng"])
            self.epoch_rng = state["epoch_rng"]
            self.order = torch.randperm(len(self.samples), generator=self.generator)
            self.position = int(state["position"])


class SampledBatches:
    """Fresh samples for every batch; the generator's state is the whole state of the stream."""

    def __init__(self, dataset: SampledDataset, batch_size: int, generator: torch.Generator) -> None:
        self.dataset, self.batch_size, self.generator = dataset, batch_size, generator

    def __iter__(self) -> SampledBatches:
        return self

    def __next__(self) -> torch.Tensor:
        return self.dataset.sample(self.batch_size, self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["rng"])
