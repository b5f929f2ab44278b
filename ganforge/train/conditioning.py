"""Class-conditional training: labelled real batches, fakes drawn with the same classes.

A generator whose class is a function of its noise (the mlp generator's ``gen.classes=K``: the
class is read off the first noise value) needs nothing new to *sample*: ``ganforge sample``,
``eval``, the fixed evaluation noise and the EMA's calibration draw plain Gaussian noise and get
every class in proportion. Training it against a discriminator that knows the classes
(``disc.classes=K``, a projection discriminator) is what makes each class's samples clean: D
then asks "is this a real 7?", not "is this a real digit?", and a half-formed shape between two
digits fools it for neither.

The protocol, for plugins too:

- the discriminator has an integer attribute ``classes`` (> 0) and is called as ``D(x, labels)``
  (and ``D.forward_pair(real, fake, labels)`` when it offers a pair pass);
- the generator has ``classes`` equal to D's and ``noise_of_class(z, labels, uniform)``, which
  returns noise that draws each row's label, given uniform draws in [0, 1) to place it;
- the data set offers ``labelled_batches(batch_size, generator)``, a stream of ``(x, labels)``.

Each step draws the fake batch with the real batch's labels, so one label tensor scores both,
and a loss or penalty sees D as a function of samples alone (:class:`WithLabels`): R1, R2,
WGAN-GP's interpolates and the relativistic pairs need no change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import torch
from torch import nn

from ganforge.data.base import Batch, GanDataset
from ganforge.errors import ConfigError


def conditional_classes(generator: nn.Module, discriminator: nn.Module) -> int:
    """The number of classes the pair is trained on, 0 for unconditional training; a
    ConfigError when the two disagree."""
    classes = int(getattr(discriminator, "classes", 0) or 0)
    if not classes:
        return 0
    gen_classes = int(getattr(generator, "classes", 0) or 0)
    if gen_classes != classes or not hasattr(generator, "noise_of_class"):
        raise ConfigError(
            f"the discriminator is class-conditional (disc.classes={classes}) but the generator "
            f"{'has ' + str(gen_classes) + ' classes' if gen_classes else 'draws no class'}: set "
            f"--set gen.classes={classes} as well (or drop disc.classes for unconditional training)")
    return classes


def check_labels(labels: torch.Tensor | None, classes: int, data: str) -> None:
    """A clear message when the data has no labels, or labels outside ``[0, classes)``."""
    if labels is None or len(labels) == 0:
        raise ConfigError(f"class-conditional training (disc.classes={classes}) needs labelled data, and "
                          f"--data {data} has no labels here; drop --set disc.classes and gen.classes, or use "
                          f"data with labels (MNIST, or an image folder with one subfolder per class)")
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise ConfigError(f"--data {data} has unlabelled samples (label {low}: images directly in the folder, "
                          f"outside a class subfolder); move every image into its class's subfolder for "
                          f"class-conditional training")
    if high >= classes:
        raise ConfigError(f"--data {data} has {high + 1} classes but disc.classes={classes}: set --set "
                          f"disc.classes={high + 1} --set gen.classes={high + 1}")


class WithLabels:
    """A conditional discriminator seen as a function of samples alone, for one batch's labels:
    what losses and gradient penalties call. It scores any batch of the step's size (real,
    fake, or WGAN-GP's interpolates between them) with those labels."""

    def __init__(self, discriminator: nn.Module, labels: torch.Tensor) -> None:
        self.discriminator, self.labels = discriminator, labels
        if getattr(discriminator, "forward_pair", None) is not None:
            self.forward_pair = self._forward_pair

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x, self.labels)

    def _forward_pair(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        forward_pair = cast(Callable[..., tuple[torch.Tensor, torch.Tensor]], self.discriminator.forward_pair)
        return forward_pair(real, fake, self.labels)

    def __getattr__(self, name: str) -> Any:  # parameters(), training, ... of the wrapped network
        return getattr(self.discriminator, name)


def training_stream(data: GanDataset, classes: int, batch_size: int, rng: torch.Generator,
                    name: str) -> Iterator[Batch]:
    """The batches a run trains on: labelled ones for a class-conditional pair (``classes`` > 0,
    after checking the data's labels fit), plain ones otherwise."""
    if not classes:
        return data.batches(batch_size, rng)
    check_labels(data.labels, classes, name)
    return data.labelled_batches(batch_size, rng)
