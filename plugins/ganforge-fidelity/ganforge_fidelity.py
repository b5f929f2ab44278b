"""ganforge plugin: Inception-v3 FID, KID, IS and precision/recall computed by torch-fidelity.

Install with ``pip install ./plugins/ganforge-fidelity`` into an environment whose torchvision
loads beside its torch (``tools/fidelity_venv.sh`` builds one); then
``ganforge eval RUN --metric inception-fid`` computes torch-fidelity's FID of the run's samples
against its real images. None of the four runs by default: each Inception pass over 10,000
images takes many minutes on a CPU.

Every number comes from ``torch_fidelity.calculate_metrics`` itself, with torch-fidelity's
``inception-v3-compat`` extractor (the TensorFlow FID network, its TensorFlow-1-compatible
bilinear resize to 299 x 299): this module only turns ganforge's float samples into the uint8
images torch-fidelity reads (grey images repeated over 3 channels) and finds the weights.
Metrics computed on the same samples share torch-fidelity's on-disk feature cache, in a
temporary folder per evaluation, so ``--metric inception-fid --metric inception-kid`` runs
Inception once over the fakes and once over the reals, not twice each.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import types
import weakref
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlparse

import torch

from ganforge import hookimpl
from ganforge.data import DataInfo, GanDataset
from ganforge.errors import ConfigError
from ganforge.hookspecs import Register
from ganforge.metrics.base import EvalData, Metric
from ganforge.options import Rule

EXTRACTOR = "inception-v3-compat"
"""torch-fidelity's name for the Inception-v3 network of the TensorFlow FID code (its default
for ISC, FID and KID; it uses VGG-16 for precision/recall unless told otherwise)."""

Positive = Annotated[int, Rule("a whole number >= 1", lambda v: v >= 1, "64")]


def _fidelity() -> types.ModuleType:
    """torch_fidelity, imported on first use: it imports torchvision, which costs a second at every
    ganforge start and fails outright beside a torch it was not built for."""
    try:
        import torch_fidelity
        import torch_fidelity.feature_extractor_inceptionv3
    except Exception as exc:  # noqa: BLE001 - torchvision's failure is a RuntimeError, not an ImportError
        raise ConfigError(
            f"the inception-* metrics need torch-fidelity, which cannot be imported here ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); install torch-fidelity==0.4.0 with a torchvision "
            f"built for this torch {torch.__version__} (tools/fidelity_venv.sh builds such an environment, "
            f".venv-fidelity)") from None
    return torch_fidelity


def weights_url() -> str:
    """Where torch-fidelity downloads its Inception-v3 weights from (converted from TensorFlow's)."""
    return _fidelity().feature_extractor_inceptionv3.URL_INCEPTION_V3


def cached_weights_path() -> Path:
    """Where torch-fidelity's download lands and is looked for: torch.hub's checkpoint folder
    (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights_url()).path)


def _missing_weights(metric: str, why: str) -> ConfigError:
    url, cached = weights_url(), cached_weights_path()
    return ConfigError(
        f"metric {metric}: torch-fidelity's Inception-v3 weights are not in its cache and could not be downloaded "
        f"({why}); on a machine with internet download {url} and put it at {cached} (the folder follows "
        f"$TORCH_HOME), or pass the file with --set metric.{metric}.weights=PATH")


def resolve_weights(metric: str, weights: str | None) -> str | None:
    """The file to pass as torch-fidelity's ``feature_extractor_weights_path``, or ``None`` for
    its own cache: downloaded there first, as torch-fidelity would, when it is not there yet; an
    offline machine gets a :class:`ConfigError` that says where the file goes and where it comes from."""
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"metric.{metric}.weights: no file at {weights}; give the path of the Inception-v3 "
                              f"state dict torch-fidelity uses ({weights_url()})")
        return str(path.resolve())
    cached = cached_weights_path()
    if cached.is_file():
        return None
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:  # what torch-fidelity's load_state_dict_from_url would do, with a message when it fails
        torch.hub.download_url_to_file(weights_url(), str(cached), progress=sys.stderr.isatty())
    except Exception as exc:  # noqa: BLE001 - URLError, timeouts, HTTP and SSL errors alike
        raise _missing_weights(metric, f"{type(exc).__name__}: {exc}") from None
    print(f"{metric}: downloaded torch-fidelity's Inception-v3 weights to {cached}", file=sys.stderr)
    return None


class Uint8Images(torch.utils.data.Dataset):
    """ganforge's float samples, (N, C, H, W) in ``value_range``, as torch-fidelity reads images:
    one uint8 tensor (3, H, W) per item, 0..255, grey images repeated over 3 channels. The same
    rounding as ganforge's sample pictures: ``round(255 * (x - lo) / (hi - lo))``."""

    def __init__(self, samples: torch.Tensor, value_range: tuple[float, float] | None = (-1.0, 1.0)) -> None:
        if samples.ndim != 4 or samples.shape[1] not in (1, 3):
            raise ConfigError(f"the inception-* metrics read grey or RGB images (N, 1 or 3, H, W); the samples have "
                              f"shape {tuple(samples.shape)}")
        self.samples = samples
        self.lo, self.hi = value_range if value_range is not None else (-1.0, 1.0)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> torch.Tensor:
        x = (self.samples[index].detach().float().cpu() - self.lo) / (self.hi - self.lo)
        image = x.clamp(0, 1).mul(255).round().to(torch.uint8)
        return image.expand(3, -1, -1).contiguous() if image.shape[0] == 1 else image


class _Shared:
    """The torch-fidelity inputs of one evaluation and the feature cache its metrics share."""

    def __init__(self, data: EvalData) -> None:
        self.fake = Uint8Images(data.fake, data.info.value_range)
        self.real = Uint8Images(data.real, data.info.value_range)
        self.folder = tempfile.mkdtemp(prefix="ganforge-fidelity-")


_SHARED: dict[int, _Shared] = {}


def _forget(key: int) -> None:
    shared = _SHARED.pop(key, None)
    if shared is not None:
        shutil.rmtree(shared.folder, ignore_errors=True)


def shared_inputs(data: EvalData) -> _Shared:
    """One :class:`_Shared` per :class:`EvalData` (and so per set of samples), dropped with its
    cache folder when the EvalData goes away, or at exit."""
    key = id(data)
    if key not in _SHARED:
        _SHARED[key] = _Shared(data)
        weakref.finalize(data, _forget, key)
    return _SHARED[key]


class FidelityMetric(Metric):
    """What the four metrics share: torch-fidelity called on the run's samples.

    Options (``--set metric.NAME.KEY=VALUE``): ``weights`` (a local copy of torch-fidelity's
    Inception-v3 weights; default: its cache, downloaded on first use), ``batch_size`` (64, the
    images per Inception batch) and ``floor`` (false: the real-vs-real floor costs another
    Inception pass over the real images; true computes it)."""

    by_default: ClassVar[bool] = False
    needs_features: ClassVar[bool] = False
    name: ClassVar[str] = ""
    binary: ClassVar[bool] = True
    """Whether the metric compares fakes with reals (IS reads the fakes alone)."""

    def __init__(self, weights: str | None = None, batch_size: Positive = 64, floor: bool = False) -> None:
        self.weights, self.batch_size = weights, batch_size
        self.has_floor = floor  # type: ignore[misc]  # an instance's choice, read where the class's is

    def applies_to(self, info: DataInfo, dataset: GanDataset | None) -> bool:
        return info.modality == "image" and len(info.sample_shape) == 3 and info.sample_shape[0] in (1, 3)

    def flags(self, data: EvalData) -> dict[str, Any]:
        """The ``calculate_metrics`` arguments that choose this metric and its settings."""
        raise NotImplementedError

    def calculate(self, data: EvalData) -> dict[str, float]:
        """torch-fidelity's own result for ``data``: ``calculate_metrics`` with this metric's flags."""
        fidelity = _fidelity()
        weights = resolve_weights(self.name, self.weights)
        shared = shared_inputs(data)
        tag = hashlib.sha256((weights or "torch-fidelity-cache").encode()).hexdigest()[:16]
        return fidelity.calculate_metrics(
            input1=shared.fake, input2=shared.real if self.binary else None,
            input1_cache_name=f"fake-{tag}", input2_cache_name=f"real-{tag}", cache_root=shared.folder, cache=True,
            feature_extractor=EXTRACTOR, feature_extractor_weights_path=weights, batch_size=self.batch_size,
            cuda=torch.cuda.is_available(), save_cpu_ram=True, verbose=False, **self.flags(data))

    def describe(self) -> dict[str, Any]:
        return {"torch_fidelity": _fidelity().__version__, "extractor": EXTRACTOR,
                "weights": self.weights or str(cached_weights_path())}


class InceptionFID(FidelityMetric):
    """Fréchet Inception Distance (Heusel et al. 2017), torch-fidelity's; lower is better."""

    name = "inception-fid"
    labels: ClassVar[dict[str, str]] = {"inception_fid": "Inception FID"}

    def flags(self, data: EvalData) -> dict[str, Any]:
        return {"fid": True}

    def compute(self, data: EvalData) -> dict[str, float]:
        return {"inception_fid": self.calculate(data)[_fidelity().KEY_METRIC_FID]}


class InceptionKID(FidelityMetric):
    """Kernel Inception Distance (Bińkowski et al. 2018), torch-fidelity's: unbiased MMD^2 with
    the cubic kernel over ``subsets`` random subsets of ``subset_size`` samples (fewer when
    fewer were drawn, as ganforge's own ``kid``); lower is better."""

    name = "inception-kid"
    labels: ClassVar[dict[str, str]] = {"inception_kid": "Inception KID (MMD^2)"}

    def __init__(self, weights: str | None = None, batch_size: Positive = 64, floor: bool = False,
                 subsets: Positive = 100, subset_size: Annotated[int, Rule("a whole number >= 2", lambda v: v >= 2,
                                                                           "1000")] = 1000) -> None:
        super().__init__(weights, batch_size, floor)
        self.subsets, self.subset_size = subsets, subset_size

    def flags(self, data: EvalData) -> dict[str, Any]:
        size = min(self.subset_size, len(data.fake), len(data.real))
        return {"kid": True, "kid_subsets": self.subsets, "kid_subset_size": size}

    def compute(self, data: EvalData) -> dict[str, float]:
        if min(len(data.fake), len(data.real)) < 2:
            raise ValueError("KID needs at least 2 fake and 2 real samples")
        result = self.calculate(data)
        keys = _fidelity()
        return {"inception_kid": result[keys.KEY_METRIC_KID_MEAN], "inception_kid_std": result[keys.KEY_METRIC_KID_STD]}


class InceptionScore(FidelityMetric):
    """Inception Score (Salimans et al. 2016), torch-fidelity's: 1,008 Inception logits, ``splits``
    splits (10); higher is better. Reads the fakes alone."""

    name = "inception-is"
    binary = False
    labels: ClassVar[dict[str, str]] = {"inception_is": "Inception IS"}

    def __init__(self, weights: str | None = None, batch_size: Positive = 64, floor: bool = False,
                 splits: Positive = 10) -> None:
        super().__init__(weights, batch_size, floor)
        self.splits = splits

    def flags(self, data: EvalData) -> dict[str, Any]:
        return {"isc": True, "isc_splits": self.splits}

    def compute(self, data: EvalData) -> dict[str, float]:
        if len(data.fake) < self.splits:
            raise ValueError(f"IS with {self.splits} splits needs at least {self.splits} samples, got {len(data.fake)}")
        result = self.calculate(data)
        keys = _fidelity()
        return {"inception_is": result[keys.KEY_METRIC_ISC_MEAN], "inception_is_std": result[keys.KEY_METRIC_ISC_STD]}


class InceptionPR(FidelityMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019), torch-fidelity's, on Inception
    features with ``k`` = 3 nearest neighbours, and their F-score; higher is better."""

    name = "inception-pr"
    labels: ClassVar[dict[str, str]] = {"inception_precision": "Inception precision",
                                        "inception_recall": "Inception recall",
                                        "inception_f_score": "Inception P/R F-score"}

    def __init__(self, weights: str | None = None, batch_size: Positive = 64, floor: bool = False,
                 k: Positive = 3) -> None:
        super().__init__(weights, batch_size, floor)
        self.k = k

    def flags(self, data: EvalData) -> dict[str, Any]:
        return {"prc": True, "prc_neighborhood": self.k}

    def compute(self, data: EvalData) -> dict[str, float]:
        if min(len(data.fake), len(data.real)) <= self.k:
            raise ValueError(f"precision/recall with k={self.k} needs more than {self.k} fake and real samples")
        result = self.calculate(data)
        keys = _fidelity()
        return {"inception_precision": result[keys.KEY_METRIC_PRECISION],
                "inception_recall": result[keys.KEY_METRIC_RECALL],
                "inception_f_score": result[keys.KEY_METRIC_F_SCORE]}


@hookimpl
def ganforge_register_metrics(register: Register) -> None:
    register("inception-fid", InceptionFID, "torch-fidelity's Inception-v3 FID (Heusel 2017); not run by default")
    register("inception-kid", InceptionKID, "torch-fidelity's Inception-v3 KID, 100 subsets of 1,000; "
             "not run by default")
    register("inception-is", InceptionScore, "torch-fidelity's Inception Score, 10 splits; not run by default")
    register("inception-pr", InceptionPR, "torch-fidelity's precision/recall (k=3) on Inception-v3 features; "
             "not run by default")
