"""Hook specifications: the whole contract between ganforge and its plugins.

Built-in components register through exactly these hooks (see :mod:`ganforge.builtin`), so a
third-party package is a first-class citizen. Component hooks receive a ``register`` callback owned
by the core: it validates the object, refuses duplicate names and records which plugin gave what.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from ganforge.train.trainer import Trainer

PROJECT = "ganforge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., None]
"""``register(name, factory, description=None)``: add one component of the hook's kind."""


@hookspec
def ganforge_register_generators(register: Register) -> None:
    """Register generator factories.

    :param register: call ``register(name, factory, description=...)``; ``factory(z_dim=...,
        sample_shape=..., value_range=..., **options)`` returns an ``nn.Module`` mapping noise of
        shape ``(N, z_dim)`` to samples of shape ``(N, *sample_shape)``.
    """


@hookspec
def ganforge_register_discriminators(register: Register) -> None:
    """Register discriminator (critic) factories.

    :param register: ``factory(sample_shape=..., **options)`` returns an ``nn.Module`` mapping
        samples to raw logits of shape ``(N,)`` or ``(N, 1)``, never probabilities (a PacGAN
        discriminator with ``pack = M`` returns one logit per pack: ``(N / M,)``). It may define
        ``forward_pair(real, fake) -> (real_logits, fake_logits)`` to score both batches in one
        pass; the trainer uses it for the discriminator update when it exists.
    """


@hookspec
def ganforge_register_losses(register: Register) -> None:
    """Register adversarial losses.

    :param register: ``factory(**options)`` returns a :class:`ganforge.losses.GanLoss`; its
        ``defaults`` declare the training settings the loss needs (n_critic, optimiser, rates).
    """


@hookspec
def ganforge_register_datasets(register: Register) -> None:
    """Register data sets.

    :param register: ``factory(**options)`` returns a :class:`ganforge.data.GanDataset`.
    """


@hookspec
def ganforge_register_metrics(register: Register) -> None:
    """Register sample-quality metrics.

    :param register: ``factory(**options)`` returns a :class:`ganforge.metrics.Metric`.
    """


@hookspec
def ganforge_register_extractors(register: Register) -> None:
    """Register feature extractors used by feature-space metrics (FID, KID, PRDC, IS).

    :param register: ``factory(**options)`` returns a :class:`ganforge.metrics.FeatureExtractor`.
    """


@hookspec
def ganforge_register_recipes(register: Register) -> None:
    """Register named run configurations for ``ganforge run --recipe NAME``.

    :param register: ``factory()`` returns the recipe's settings as a mapping in the layout of a
        ``--config`` TOML file (run keys, plus ``options`` of ``gen``/``disc``/``loss``/``data``
        tables); :func:`ganforge.config.load_toml` reads such a file.
    """


@hookspec
def ganforge_on_train_start(trainer: Trainer) -> None:
    """Called once, after models, data and optimisers are built and before the first step.

    :param trainer: the running trainer; ``trainer.config`` is fully resolved.
    """


@hookspec
def ganforge_on_step_end(trainer: Trainer, step: int, logs: Mapping[str, Any], logged: bool) -> None:
    """Called after every generator step, with that step's numbers.

    :param step: the number of finished steps (1-based).
    :param logs: on a logging step (``logged``), the line just written to metrics.jsonl: the
        losses averaged over the steps since the previous line, ``step``, ``time``,
        ``steps_per_s``, ``threads`` (and ``skipped`` with ``--on-nan skip``). On other steps,
        this step's own ``d_loss`` and ``g_loss`` and ``step``; a loss is read from the device
        only when a plugin reads it.
    :param logged: whether ``logs`` was written to metrics.jsonl at this step.
    """


@hookspec
def ganforge_on_eval(trainer: Trainer, step: int, results: dict[str, float]) -> None:
    """Called after each ``--eval-every`` evaluation, once its row is in metrics.jsonl.

    :param step: the step the generator was evaluated at.
    :param results: metric values by key (``eval/fid``, ``eval/recall``, ...), as written.
    """


@hookspec
def ganforge_on_checkpoint_saved(trainer: Trainer, step: int, path: Path) -> None:
    """Called after a checkpoint is complete on disk and ``latest`` points at it.

    :param path: the checkpoint's folder.
    """


@hookspec
def ganforge_on_train_end(trainer: Trainer) -> None:
    """Called once after the last step (also after an interruption, before it propagates)."""
