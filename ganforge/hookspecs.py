"""Hook specifications: the whole contract between ganforge and its plugins.

Built-in components register through exactly these hooks (see :mod:`ganforge.builtin`), so a
third-party package is a first-class citizen. Component hooks receive a ``register`` callback owned
by the core: it validates the object, refuses duplicate names and records which plugin gave what.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ganforge.train.run_view import Run

PROJECT = "ganforge"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The ``register`` callback a component hook receives: add one component of the hook's kind.

    :param name: the name users type (``--gen NAME``); a name two plugins both register is
        reached as ``NAME@distribution``.
    :param factory: a callable that builds the component from its options (``--set gen.KEY=...``);
        its annotations are the options' checks (see :meth:`ganforge.registry.Component.build`).
    :param description: one line for ``ganforge list``; the factory's first docstring line if
        left out.
    :param defaults: run settings the component needs, overriding ganforge's own defaults and
        overridden by a recipe, ``--config``, flags and ``--set`` (the 2-D mixtures' ``z_dim``
        2 and ``batch_size`` 100). Only settings marked as such in :mod:`ganforge.settings` may be
        given.
    """

    def __call__(self, name: str, factory: Callable[..., Any], description: str | None = None,
                 defaults: Mapping[str, Any] | None = None) -> None: ...


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
        Its ``default_penalties`` declare R1/R2 weights (``{"r1": ..., "r2": ...}``, each 0 when
        left out): the training step applies R1 and R2 for every loss, and ``--set loss.r1`` /
        ``loss.r2`` override the weights. Those two options are taken out before the factory is
        called, so the factory never receives them.
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


# -- lifecycle hooks ------------------------------------------------------------------------------
#
# The order of one training session: ``ganforge_on_train_start`` once (after a resume, the
# plugins' own state is already restored); then for every step ``ganforge_on_step_end``, and
# after it, when due, ``ganforge_on_samples`` (every ``--sample-every`` steps),
# ``ganforge_on_checkpoint_saved`` (every ``--ckpt-every``) and ``ganforge_on_eval`` (every
# ``--eval-every``); after the last step a checkpoint (``ganforge_on_checkpoint_saved``) and the
# last pictures (``ganforge_on_samples``); finally ``ganforge_on_train_end``, also after an
# interruption or an error. Only the process that writes the run folder (rank 0 under torchrun)
# calls them. Each receives ``run``, a read-only :class:`ganforge.train.run_view.Run`: the resolved
# settings (``run.config``), the run folder (``run.folder``), the step, the fixed noise and
# ``run.draw()``.
#
# A plugin keeps state across ``--resume`` by defining ``state_dict()`` (JSON-able values and
# tensors) and ``load_state_dict(state)`` on its plugin object or module: every checkpoint stores
# what ``state_dict()`` returns, and a resume hands it back before ``ganforge_on_train_start``.


@hookspec
def ganforge_on_train_start(run: Run) -> None:
    """Called once, after models, data and optimisers are built and before the first step.

    :param run: the run; ``run.config`` is fully resolved, ``run.start_step`` > 0 after a resume.
    """


@hookspec
def ganforge_on_step_end(run: Run, step: int, logs: Mapping[str, Any], logged: bool) -> None:
    """Called after every generator step, with that step's numbers.

    :param step: the number of finished steps (1-based).
    :param logs: on a logging step (``logged``), the line just written to the run's metrics
        log: the losses averaged over the steps since the previous line, ``step``, ``time``,
        ``steps_per_s``, ``threads`` (and ``skipped`` with ``--on-nan skip``). On other steps,
        this step's own ``d_loss`` and ``g_loss`` and ``step``; a loss is read from the device
        only when a plugin reads it.
    :param logged: whether ``logs`` was written to the metrics log at this step.
    """


@hookspec
def ganforge_on_samples(run: Run, step: int, samples: torch.Tensor) -> None:
    """Called when the run draws its pictures: every ``--sample-every`` steps and after the last.

    :param samples: the sampler's output for the fixed noise (the weight average when the run
        keeps one), in eval mode, float32 on the CPU, in the data's value range
        (``run.info.value_range``): images ``(N, C, H, W)`` or points ``(N, D)``.
    """


@hookspec
def ganforge_on_eval(run: Run, step: int, results: dict[str, float]) -> None:
    """Called after each ``--eval-every`` evaluation, once its row is in the metrics log.

    :param step: the step the generator was evaluated at.
    :param results: metric values by key (``eval/fid``, ``eval/recall``, ...), as written.
    """


@hookspec
def ganforge_on_checkpoint_saved(run: Run, step: int, path: Path) -> None:
    """Called after a checkpoint is complete on disk and the run's latest pointer names it.

    :param path: the checkpoint's folder.
    """


@hookspec
def ganforge_on_train_end(run: Run) -> None:
    """Called once after the last step (also after an interruption, before it propagates)."""
