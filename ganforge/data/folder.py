"""Your own images: ``--data folder --set data.root=DIR``.

Every PNG, JPEG, BMP, GIF or WebP file under ``root`` (recursively) is decoded once with Pillow,
converted to ``channels`` (1: grey, 3: RGB; transparency is laid on white), resized so its short
side is ``size`` and centre-cropped to ``size x size``, and scaled to [-1, 1]. The decoded tensor
is what the epochs iterate over, so nothing is decoded twice. Images of mixed sizes and modes
are normal input; a file Pillow cannot read is skipped and counted (``skipped``), and the run
fails only when nothing usable is left. The first subfolder of each image's path is its class
label (``classes`` lists them), kept for a later conditional GAN; images directly under ``root``
have label -1. ``holdout`` images (a fixed, seeded choice) are kept out of training for
evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import DataInfo, TensorDataset
from ganforge.errors import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
SPLIT_SEED = 0


def _size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 4 <= value <= 1024:
        raise DataError(f"data.size must be a whole number of pixels from 4 to 1024, such as --set data.size=32; "
                        f"got {value!r}")
    return value


def _channels(value: object) -> int:
    if value not in (1, 3):
        raise DataError(f"data.channels must be 1 (grey) or 3 (RGB), such as --set data.channels=3; got {value!r}")
    return int(value)


def _decode(path: Path, size: int, channels: int) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        opened.load()
        image: Image.Image = opened
        if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        image = image.convert("L" if channels == 1 else "RGB")
        image = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


class ImageFolder(TensorDataset):
    """The images under ``root``, shape ``(channels, size, size)``, values in [-1, 1]."""

    def __init__(self, root: str | None = None, size: int = 32, channels: int = 3, holdout: int | None = None) -> None:
        if root is None:
            raise DataError("--data folder needs a folder of images: --set data.root=DIR")
        self.root = Path(str(root)).expanduser()
        size, channels = _size(size), _channels(channels)
        if not self.root.is_dir():
            raise DataError(f"data.root {self.root} is not a folder; pass --set data.root=DIR with your images")
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
        if not files:
            raise DataError(f"no images in {self.root} (looked for {', '.join(sorted(EXTENSIONS))}, in subfolders "
                            f"too); put your PNG or JPEG files there")
        images, labels, self.skipped = [], [], []
        self.classes = sorted({p.relative_to(self.root).parts[0] for p in files if p.parent != self.root})
        index = {name: i for i, name in enumerate(self.classes)}
        for path in files:
            try:
                images.append(_decode(path, size, channels))
            except (OSError, ValueError, SyntaxError) as exc:  # Pillow's ways of saying "not an image"
                self.skipped.append(f"{path.relative_to(self.root)}: {exc}")
                continue
            labels.append(index[path.relative_to(self.root).parts[0]] if path.parent != self.root else -1)
        if not images:
            raise DataError(f"none of the {len(files)} image files in {self.root} could be read "
                            f"(first: {self.skipped[0]}); are they damaged or of another format?")
        data = torch.from_numpy(np.stack(images)).float().div_(127.5).sub_(1.0)
        holdout = min(len(data) // 10, 1000) if holdout is None else holdout
        if isinstance(holdout, bool) or not isinstance(holdout, int) or not 0 <= holdout < len(data):
            raise DataError(f"data.holdout must be from 0 to {len(data) - 1} images, got {holdout!r}")
        order = torch.from_numpy(np.random.default_rng(SPLIT_SEED).permutation(len(data)))
        all_labels = torch.tensor(labels)[order]
        self.test_labels, train_labels = all_labels[:holdout], all_labels[holdout:]
        info = DataInfo(sample_shape=(channels, size, size), value_range=(-1.0, 1.0), modality="image")
        super().__init__(data[order[holdout:]], data[order[:holdout]], info, train_labels)

    def describe(self) -> str:
        """One line for the log: how many images, their shape, classes, and any skipped files."""
        text = (f"{len(self.train) + len(self.test)} images from {self.root} as {tuple(self.info.sample_shape)} "
                f"({len(self.train)} train, {len(self.test)} held out), {len(self.classes)} classes")
        if self.skipped:
            text += f"; skipped {len(self.skipped)} unreadable files (first: {self.skipped[0]})"
        return text
