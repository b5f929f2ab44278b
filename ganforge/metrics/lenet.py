"""The shipped MNIST classifiers: a small LeNet-style network with two sets of weights.

``weights/lenet_mnist.safetensors``, the feature extractor behind the offline FID/KID, was trained
on the 4,000 bundled training digits; ``weights/lenet_mnist_all.safetensors``, the digit reader of
the ``stacked-modes`` metric, on all of MNIST's 60,000 training digits except the 1,000 bundled
held-out ones, as the papers' Stacked MNIST classifiers were (a reader trained on 4,000 digits
misreads 1.8 % of real ones). Both come from ``python scripts/train_extractor.py`` in a source
checkout; the SHA-256 and the held-out accuracy of each are recorded next to it (``.json``) and
checked at every load, so a damaged or swapped file is refused instead of silently producing
different numbers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError

WEIGHTS_DIR = Path(__file__).parent / "weights"
FEATURES = "lenet_mnist"  # the FID/KID extractor, trained on the bundled digits
DIGIT_READER = "lenet_mnist_all"  # stacked-modes' classifier, trained on all of MNIST
RECORD = WEIGHTS_DIR / f"{FEATURES}.json"
FEATURE_DIM = 128


class LeNet(nn.Module):
    """conv5(16)-pool-conv5(32)-pool-fc(128)-fc(10) on (N, 1, 28, 28) inputs in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.fc1 = nn.Linear(32 * 4 * 4, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class LeNetExtractor:
    """FeatureExtractor over the shipped LeNet: 128-d features and 10-class probabilities."""

    input_shape = (1, 28, 28)
    feature_dim = FEATURE_DIM

    def __init__(self, weights: str | None = None, device: str = "cpu", batch_size: int = 500,
                 shipped: str = FEATURES) -> None:
        """``weights``: a LeNet safetensors file of one's own; else the shipped set named ``shipped``
        (:data:`FEATURES` or :data:`DIGIT_READER`), checked against its recorded SHA-256."""
        from safetensors.torch import load_file

        path = Path(weights) if weights else WEIGHTS_DIR / f"{shipped}.safetensors"
        if not path.is_file():
            raise ConfigError(f"extractor weights {path} not found; reinstall ganforge or retrain them with "
                              f"`python scripts/train_extractor.py` in a source checkout")
        if weights is None:
            record_path = path.with_suffix(".json")
            record = json.loads(record_path.read_text())
            if sha256(path) != record["sha256"]:
                raise ConfigError(f"{path} does not match its recorded SHA-256 ({record_path.name}); the file "
                                  f"is damaged: reinstall ganforge or retrain with scripts/train_extractor.py")
        self.model = LeNet()
        self.model.load_state_dict(load_file(str(path)))
        self.model.eval().to(device)
        self.device, self.batch_size = torch.device(device), batch_size

    def _check(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ConfigError(f"the lenet-mnist extractor expects samples of shape {self.input_shape} "
                              f"(MNIST-like images), got {tuple(x.shape[1:])}; choose another extractor "
                              f"with --set metric.extractor=NAME or metrics that work on raw samples")

    @torch.no_grad()
    def _map(self, x: torch.Tensor, fn) -> torch.Tensor:
        self._check(x)
        out = [fn(x[i: i + self.batch_size].to(self.device).float()).cpu() for i in range(0, len(x), self.batch_size)]
        return torch.cat(out) if out else torch.empty(0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 128) penultimate-layer activations."""
        return self._map(x, self.model.features)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 10) class probabilities, for the Inception-style score."""
        return self._map(x, lambda b: F.softmax(self.model(b), dim=1))
