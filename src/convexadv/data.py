"""Data sets of section VII: the CIFAR-10 class pair, the random 2-D sets and a regression set.

* CIFAR-10 (section VII-D): two classes (default automobile vs horse, the
  paper's "second and eighth class"), labels +1 / -1, each 32x32x3 image
  downsampled by area averaging to 7x7x3 = 147 features on the 0-255 pixel
  scale (so eps = 10 is in pixel units). Read either through torchvision's
  ``CIFAR10(root, download=True)`` or from a local ImageFolder tree
  ``root/{train,test}/<class name>/*.jpg|png``.
* Random 2-D sets (sections VII-A and VII-B): points uniform in [-1, 1]^2 with
  balanced random labels.
* Regression (squared loss): scikit-learn's bundled diabetes data, features and
  target standardised with the training split's statistics.

Everything here is deterministic given its seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

#: CIFAR-10's class names in label order (torchvision's ``CIFAR10.classes``)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
SOURCES = ("imagefolder", "torchvision")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    """Features X (n, d), labels or targets y (n,), and where they came from."""

    X: np.ndarray
    y: np.ndarray
    info: dict

    def save(self, path) -> None:
        from .io import atomic_savez

        atomic_savez(path, X=self.X, y=self.y, **{f"info_{k}": np.asarray(v) for k, v in self.info.items()})

    @classmethod
    def load(cls, path) -> "Dataset":
        with np.load(path, allow_pickle=False) as data:
            info = {k[5:]: data[k].tolist() for k in data.files if k.startswith("info_")}
            return cls(X=np.asarray(data["X"]), y=np.asarray(data["y"]), info=info)


# --------------------------------------------------------------------------- CIFAR-10


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) averaging matrix of adaptive average pooling along one axis.

    Output cell i averages inputs floor(i * n_in / n_out) .. ceil((i + 1) * n_in / n_out) - 1,
    exactly as ``torch.nn.functional.adaptive_avg_pool2d`` does.
    """
    A = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        A[i, lo:hi] = 1.0 / (hi - lo)
    return A


def downsample(images: np.ndarray, size: int = 7) -> np.ndarray:
    """Area-average (n, H, W, C) images to (n, C * size * size) features, channel-major.

    The same numbers as ``torch.nn.functional.adaptive_avg_pool2d(x, size)`` (the area
    interpolation of ``interpolate(mode="area")``), computed in numpy so that loading data does
    not need torch. Values keep the input's scale (0-255).
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (n, H, W, C), got shape {images.shape}")
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    n, H, W, _ = images.shape
    rows, cols = _area_weights(H, int(size)), _area_weights(W, int(size))
    pooled = np.einsum("ih,nhwc,jw->ncij", rows, images.astype(np.float64), cols)
    return pooled.reshape(n, -1)


def _check_classes(classes) -> tuple[str, str]:
    classes = tuple(classes)
    if len(classes) != 2 or classes[0] == classes[1]:
        raise ValueError(f"classes must name two different classes, got {list(classes)}")
    return classes


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def imagefolder_files(root, split: str, classes) -> tuple[list[str], np.ndarray]:
    """Sorted image paths of ``root/split/<class>`` for the two classes and their +1 / -1 labels."""
    classes = _check_classes(classes)
    split_dir = os.path.join(os.fspath(root), _check_split(split))
    if not os.path.isdir(split_dir):
        raise FileNotFoundError(
            f"no ImageFolder split at {split_dir!r}: expected {root}/{split}/<class name>/ image folders "
            "(set cifar.root in the config, or cifar.source: torchvision to download CIFAR-10)"
        )
    paths, labels = [], []
    for label, name in zip((1.0, -1.0), classes):
        class_dir = os.path.join(split_dir, name)
        if not os.path.isdir(class_dir):
            found = sorted(e for e in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, e)))
            raise FileNotFoundError(f"class folder {class_dir!r} is missing; {split_dir!r} holds {found}")
        files = sorted(f for f in os.listdir(class_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise FileNotFoundError(f"no images in {class_dir!r}")
        paths += [os.path.join(class_dir, f) for f in files]
        labels += [label] * len(files)
    return paths, np.asarray(labels)


def read_images(paths) -> np.ndarray:
    """Decode image files to an (n, H, W, 3) uint8 array (all images must share a size)."""
    from PIL import Image

    arrays = []
    for path in paths:
        with Image.open(path) as image:
            arrays.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}; CIFAR-10 images are 32x32")
    return np.stack(arrays)


def _torchvision_split(root, split: str, classes) -> tuple[np.ndarray, np.ndarray]:
    import torchvision

    classes = _check_classes(classes)
    dataset = torchvision.datasets.CIFAR10(os.fspath(root), train=_check_split(split) == "train", download=True)
    names = list(dataset.classes)
    for name in classes:
        if name not in names:
            raise ValueError(f"unknown CIFAR-10 class {name!r}; choose from {names}")
    targets = np.asarray(dataset.targets)
    pos, neg = names.index(classes[0]), names.index(classes[1])
    keep = np.flatnonzero((targets == pos) | (targets == neg))
    return np.asarray(dataset.data)[keep], np.where(targets[keep] == pos, 1.0, -1.0)


def balanced_indices(y: np.ndarray, n: int | None, rng) -> np.ndarray:
    """Indices of a balanced random subset of size n (n / 2 per label), sorted; all when n is None."""
    y = np.asarray(y)
    if n is None:
        return np.arange(y.shape[0])
    if int(n) != n or n < 2 or n % 2:
        raise ValueError(f"the subset size must be an even integer >= 2, got {n!r}")
    rng = np.random.default_rng(rng)
    picked = []
    for label in (1.0, -1.0):
        pool = np.flatnonzero(y == label)
        if pool.shape[0] < n // 2:
            raise ValueError(f"asked for {n // 2} samples of label {label:+g} but only {pool.shape[0]} exist")
        picked.append(rng.choice(pool, size=n // 2, replace=False))
    return np.sort(np.concatenate(picked))


def load_cifar_pair(
    root,
    *,
    split: str = "train",
    source: str = "imagefolder",
    classes=("automobile", "horse"),
    n_samples: int | None = None,
    image_size: int = 7,
    seed: int = 0,
) -> Dataset:
    """Two CIFAR-10 classes as a binary data set (first class +1, second class -1).

    ``n_samples=None`` keeps the whole split (2000 images for a test split);
    otherwise a balanced subset drawn with ``seed`` (only those images are
    decoded from an ImageFolder). Features are area-averaged to
    ``image_size`` x ``image_size`` x 3 on the 0-255 scale.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    classes = _check_classes(classes)
    if source == "imagefolder":
        paths, labels = imagefolder_files(root, split, classes)
        idx = balanced_indices(labels, n_samples, seed)
        images, y = read_images([paths[i] for i in idx]), labels[idx]
    else:
        images, labels = _torchvision_split(root, split, classes)
        idx = balanced_indices(labels, n_samples, seed)
        images, y = images[idx], labels[idx]
    X = downsample(images, image_size)
    info = {"source": source, "split": split, "classes": list(classes), "seed": int(seed),
            "image_size": int(image_size), "n": int(X.shape[0])}
    return Dataset(X=X, y=y, info=info)


# --------------------------------------------------------------------------- random 2-D sets


def random_2d(n: int, *, seed: int = 0, low: float = -1.0, high: float = 1.0,
              min_separation: float = 0.0) -> Dataset:
    """n points uniform in [low, high]^2 with balanced random labels +1 / -1.

    With ``min_separation > 0`` points closer than that in l_inf distance to an
    earlier point are redrawn, so that eps-boxes of radius min_separation / 2
    do not overlap.
    """
    if int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    if not high > low:
        raise ValueError(f"need high > low, got low={low}, high={high}")
    rng = np.random.default_rng(seed)
    points: list[np.ndarray] = []
    tries = 0
    while len(points) < n:
        tries += 1
        if tries > 1000 * n:
            raise ValueError(f"cannot place {n} points with l_inf separation {min_separation} in the square")
        p = rng.uniform(low, high, size=2)
        if min_separation > 0 and points and np.abs(np.asarray(points) - p).max(axis=1).min() < min_separation:
            continue
        points.append(p)
    y = np.where(rng.permutation(n) < (n + 1) // 2, 1.0, -1.0)
    info = {"kind": "random_2d", "seed": int(seed), "n": int(n), "low": float(low), "high": float(high),
            "min_separation": float(min_separation)}
    return Dataset(X=np.asarray(points), y=y, info=info)


# --------------------------------------------------------------------------- regression


def load_regression(name: str = "diabetes", *, test_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """scikit-learn's bundled diabetes data (442 x 10), split and standardised.

    Features and target are centred and scaled with the training split's mean
    and standard deviation. Returns (train, test).
    """
    if name != "diabetes":
        raise ValueError(f"unknown regression data set {name!r}; only 'diabetes' is bundled")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, scaled=False)
    rng = np.random.default_rng(seed)
    order = rng.permutation(X.shape[0])
    n_test = int(round(test_fraction * X.shape[0]))
    test, train = order[:n_test], order[n_test:]
    mu, sd = X[train].mean(axis=0), X[train].std(axis=0)
    ymu, ysd = y[train].mean(), y[train].std()
    info = {"kind": "diabetes", "seed": int(seed), "test_fraction": float(test_fraction)}

    def part(idx, split):
        return Dataset(X=(X[idx] - mu) / sd, y=(y[idx] - ymu) / ysd, info={**info, "split": split, "n": len(idx)})

    return part(train, "train"), part(test, "test")
