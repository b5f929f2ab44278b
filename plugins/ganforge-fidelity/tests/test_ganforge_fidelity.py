"""The plugin's numbers are torch-fidelity's own.

The real Inception weights cannot be downloaded here, so the tests save a randomly initialised
state dict of torch-fidelity's own Inception-v3 network and give it to both sides: the plugin
(through its Metric classes and through the real ``ganforge eval``) and
``torch_fidelity.calculate_metrics`` called directly on the same images. The weights' values do
not matter for that comparison, only that both load the same file. Inception at 299 x 299 costs
about 0.2 to 0.5 s per image on 2 CPU cores, hence N = 20, one shared run and one reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path
from unittest import mock

import pytest
import torch

try:
    import torch_fidelity
    import torch_fidelity.utils
    from torch_fidelity import feature_extractor_inceptionv3 as inception
except Exception as exc:  # noqa: BLE001 - a torchvision built for another torch raises RuntimeError
    if os.environ.get("GANFORGE_FIDELITY_REQUIRED"):  # make test-fidelity: a skip there would hide a broken venv
        raise
    pytest.skip(f"torch-fidelity cannot be imported here ({type(exc).__name__}); `make test-fidelity` builds "
                f".venv-fidelity and runs these tests there", allow_module_level=True)

import ganforge_fidelity

from ganforge import RunConfig, Trainer, hookimpl
from ganforge.data import DataInfo
from ganforge.errors import ConfigError
from ganforge.metrics.base import EvalData, Metric
from ganforge.metrics.evaluate import default_metrics, evaluate
from ganforge.plugins import build_registry, get_plugin_manager
from ganforge.train.build import build_dataset
from ganforge.train.restore import load_run

N = 20  # IS: 10 splits of 2; KID: subsets of 20
REL = 1e-6
METRICS = {"inception-fid": ganforge_fidelity.InceptionFID, "inception-kid": ganforge_fidelity.InceptionKID,
           "inception-is": ganforge_fidelity.InceptionScore, "inception-pr": ganforge_fidelity.InceptionPR}
# ganforge's key -> torch-fidelity's key
KEYS = {"inception_fid": "frechet_inception_distance", "inception_kid": "kernel_inception_distance_mean",
        "inception_kid_std": "kernel_inception_distance_std", "inception_is": "inception_score_mean",
        "inception_is_std": "inception_score_std", "inception_precision": "precision",
        "inception_recall": "recall", "inception_f_score": "f_score"}


def cli_env(**extra: str) -> dict[str, str]:
    # No "ganforge._C is not available" warning: .venv-fidelity installs ganforge without it.
    return {**os.environ, "CI": "true", "GANFORGE_OP_REFERENCE": "1", **extra}


def ganforge_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("ganforge")  # the installed command, its entry points
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env or cli_env(), timeout=600)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A randomly initialised state dict of torch-fidelity's Inception-v3, built without loading
    anything (the constructor's loading is stubbed out for this one call)."""
    torch.manual_seed(0)
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(inception.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None):
        net = inception.FeatureExtractorInceptionV3(ganforge_fidelity.EXTRACTOR, ["2048"])
    for module in net.modules():  # He init: PyTorch's default shrinks the activations to denormals
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("weights") / "inception-random.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny run on the bundled 8x8 digits (grey: the plugin repeats them over 3 channels)."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    config = RunConfig(data="digits", steps=3, batch_size=16, out=str(out), threads=1, log_every=1,
                       sample_every=0, ckpt_every=0, options={"gen": {"hidden": (16,)}, "disc": {"hidden": (16,)}})
    pm = get_plugin_manager(entry_points=False)
    Trainer(config, registry=build_registry(pm), plugin_manager=pm).fit()
    return out


class Capture(Metric):
    """Keeps the images ``evaluate`` hands its metrics, so the reference reads the very same ones."""

    needs_features = False
    by_default = False
    seen: EvalData | None = None

    def compute(self, data: EvalData) -> dict[str, float]:
        Capture.seen = data
        return {}


class CapturePlugin:
    @hookimpl
    def ganforge_register_metrics(self, register) -> None:  # type: ignore[no-untyped-def]
        register("capture", Capture)


@pytest.fixture(scope="module")
def drawn(run) -> EvalData:
    """The N fakes and N reals that ``ganforge eval RUN -n N`` draws (seed 0)."""
    registry = build_registry(get_plugin_manager(entry_points=False, extra=[CapturePlugin()]))
    restored = load_run(run, registry)
    evaluate(restored.generator, restored.z_dim, build_dataset(restored.config, registry), registry, ["capture"], N)
    assert Capture.seen is not None and len(Capture.seen.fake) == len(Capture.seen.real) == N
    return Capture.seen


class Images(torch.utils.data.Dataset):
    """The test's own conversion, written apart from the plugin's: [-1, 1] -> 0..255, grey x 3."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = ((x + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).repeat(1, 3 // x.shape[1], 1, 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


@pytest.fixture(scope="module")
def reference(drawn, weights) -> dict[str, float]:
    """torch-fidelity's own numbers, all four metrics in one call, defaults but for the weights and
    the KID subset size (N < 1,000, as the plugin does)."""
    return torch_fidelity.calculate_metrics(
        input1=Images(drawn.fake), input2=Images(drawn.real), isc=True, fid=True, kid=True, prc=True,
        feature_extractor="inception-v3-compat", feature_extractor_weights_path=str(weights), kid_subset_size=N,
        cuda=False, verbose=False, save_cpu_ram=True)


def test_the_metric_classes_give_torch_fidelitys_numbers_with_one_pass_per_image_set(drawn, reference, weights,
                                                                                      monkeypatch):
    passes = []
    real_pass = torch_fidelity.utils.get_featuresdict_from_dataset

    def counted(input, feat_extractor, *args, **kwargs):  # noqa: A002 - torch-fidelity's name
        passes.append((len(input), tuple(feat_extractor.get_requested_features_list())))
        return real_pass(input, feat_extractor, *args, **kwargs)

    monkeypatch.setattr(torch_fidelity.utils, "get_featuresdict_from_dataset", counted)
    data = EvalData(drawn.fake, drawn.real, drawn.info)
    values: dict[str, float] = {}
    for metric in METRICS.values():
        values.update(metric(weights=str(weights)).compute(data))
    assert set(values) == set(KEYS)
    for key, theirs in KEYS.items():
        assert values[key] == pytest.approx(reference[theirs], rel=REL, abs=1e-12), key
    # FID, KID and P/R share the 2048-d features of the fakes and of the reals; IS adds the logits
    assert sorted(passes) == sorted([(N, ("2048",)), (N, ("2048",)), (N, ("logits_unbiased",))])


def test_ganforge_eval_gives_torch_fidelitys_numbers(run, drawn, reference, weights, tmp_path):
    args = ["eval", str(run), "-n", str(N), "--json", str(tmp_path / "eval.json")]
    for name in METRICS:
        args += ["--metric", name, "--set", f"metric.{name}.weights={weights}"]
    result = ganforge_cli(*args, "--set", "metric.inception-is.floor=true")  # IS: the cheapest floor
    assert result.returncode == 0, result.stderr
    assert "Inception FID" in result.stdout and "Inception precision" in result.stdout
    written = json.loads((tmp_path / "eval.json").read_text())
    assert (written["n_fake"], written["n_real"]) == (N, N)
    for key, theirs in KEYS.items():
        assert written["metrics"][key] == pytest.approx(reference[theirs], rel=REL, abs=1e-12), key
    # the floor only where asked for: here IS of one half of the reals (FID's would cost another
    # 2048 x 2048 eigendecomposition, 13 s on 2 cores)
    assert sorted(written["real_vs_real"]) == ["inception_is", "inception_is_std"]
    assert written["real_vs_real"]["inception_is"] >= 1


def test_offline_without_weights_one_line_exit_2(run, tmp_path):
    """No file in torch-fidelity's cache (an empty TORCH_HOME) and no network: the download is
    tried through a proxy on a closed loopback port, so nothing leaves this machine."""
    home = tmp_path / "torch-home"
    dead = "http://127.0.0.1:9"
    env = cli_env(TORCH_HOME=str(home), https_proxy=dead, HTTPS_PROXY=dead, http_proxy=dead, HTTP_PROXY=dead,
                  no_proxy="", NO_PROXY="")
    result = ganforge_cli("eval", str(run), "--metric", "inception-fid", "-n", "16", env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    cached = home / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    for part in (inception.URL_INCEPTION_V3, str(cached), "--set metric.inception-fid.weights=PATH"):
        assert part in lines[0]
    assert not cached.exists()


def test_a_file_in_torch_fidelitys_cache_is_used_without_a_download(tmp_path, monkeypatch, weights):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = ganforge_fidelity.cached_weights_path()
    assert cached == tmp_path / "hub" / "checkpoints" / Path(inception.URL_INCEPTION_V3).name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(weights.read_bytes())
    with mock.patch.object(torch.hub, "download_url_to_file", side_effect=AssertionError("no download")):
        assert ganforge_fidelity.resolve_weights("inception-fid", None) is None  # torch-fidelity loads it itself


def test_a_failed_download_is_a_config_error_that_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    offline = urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    with mock.patch.object(torch.hub, "download_url_to_file", side_effect=offline), \
            pytest.raises(ConfigError) as caught:
        ganforge_fidelity.resolve_weights("inception-kid", None)
    message = str(caught.value)
    assert inception.URL_INCEPTION_V3 in message and str(ganforge_fidelity.cached_weights_path()) in message
    assert "--set metric.inception-kid.weights=PATH" in message and "name resolution" in message


def test_a_weights_path_that_is_no_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"metric\.inception-fid\.weights: no file at"):
        ganforge_fidelity.resolve_weights("inception-fid", str(tmp_path / "missing.pth"))


def test_without_torch_fidelity_each_metric_says_so_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # as if it could not be imported
    data = EvalData(torch.zeros(12, 1, 8, 8), torch.zeros(12, 1, 8, 8), DataInfo((1, 8, 8), (-1.0, 1.0), "image"))
    for metric in METRICS.values():
        with pytest.raises(ConfigError, match="need torch-fidelity, which cannot be imported here") as caught:
            metric().compute(data)
        assert "tools/fidelity_venv.sh" in str(caught.value) and "\n" not in str(caught.value)


def test_images_reach_torch_fidelity_as_uint8_rgb():
    grey = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2)
    image = ganforge_fidelity.Uint8Images(grey)[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 2, 2)
    assert image[0].flatten().tolist() == [0, 128, 255, 255]  # 127.5 rounds half to even; clamped
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])
    rgb = torch.rand(2, 3, 5, 4) * 2 - 1
    assert torch.equal(ganforge_fidelity.Uint8Images(rgb)[1], Images(rgb)[1])
    with pytest.raises(ConfigError, match="grey or RGB"):
        ganforge_fidelity.Uint8Images(torch.zeros(2, 2, 4, 4))


def test_none_runs_by_default_nor_needs_ganforges_extractor():
    registry = build_registry(get_plugin_manager(entry_points=False, extra=[ganforge_fidelity]))
    skipped: dict[str, str] = {}
    chosen = default_metrics(registry, registry.get("dataset", "mnist").build(), skipped=skipped)
    assert "fid" in chosen and not any(name.startswith("inception-") for name in [*chosen, *skipped])
    for name, cls in METRICS.items():
        metric = registry.get("metric", name).build()
        assert type(metric) is cls and not metric.by_default and not metric.needs_features
        assert not metric.has_floor and registry.get("metric", name).build(floor=True).has_floor
        assert metric.applies_to(DataInfo((3, 32, 32), (-1.0, 1.0), "image"), None)
        assert not metric.applies_to(DataInfo((2,), None, "points"), None)
    with pytest.raises(ConfigError, match="batch_size"):
        registry.get("metric", "inception-fid").build(batch_size=0)


def test_registered_through_the_entry_point():
    import importlib.metadata as md

    if not any(ep.value == "ganforge_fidelity" for ep in md.entry_points(group="ganforge")):
        pytest.skip("ganforge-fidelity is not pip-installed here; tools/fidelity_venv.sh installs it")
    registry = build_registry(get_plugin_manager())
    for name in METRICS:
        assert registry.get("metric", name).provider.distribution == "ganforge-fidelity"
