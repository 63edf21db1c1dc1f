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
* Digits: a pair of scikit-learn's bundled 8x8 handwritten digits (0-16 grey levels,
  64 features), a second real image experiment that needs no download.
* Custom data: a user's own binary data set, an ``.npz`` or ``.csv`` file or an
  ImageFolder tree, checked by :func:`check_custom` before any pipeline job runs.

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
    try:
        dataset = torchvision.datasets.CIFAR10(os.fspath(root), train=_check_split(split) == "train", download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a broken archive raises RuntimeError
        raise RuntimeError(
            f"could not download CIFAR-10 into {os.fspath(root)!r} through torchvision ({type(error).__name__}: "
            f"{error}). Without internet access, use a local copy: either put torchvision's "
            "cifar-10-python.tar.gz (or its extracted cifar-10-batches-py/) into that directory, or set "
            "cifar.source: imagefolder with cifar.root pointing to a tree ROOT/{train,test}/<class name>/*.jpg"
        ) from error
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


# --------------------------------------------------------------------------- held-out splits


def stratified_test_mask(y: np.ndarray, test_fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of a seeded test split holding ``test_fraction`` of every label (at least one each)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    mask = np.zeros(y.shape[0], dtype=bool)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if members.size < 2:
            raise ValueError(f"label {label!r} has {members.size} sample(s); a train/test split needs at least 2")
        count = min(max(1, int(round(test_fraction * members.size))), members.size - 1)
        mask[rng.choice(members, size=count, replace=False)] = True
    return mask


def _subset(X: np.ndarray, y: np.ndarray, n_samples: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = balanced_indices(y, n_samples, seed)
    return X[idx], y[idx]


# --------------------------------------------------------------------------- digits


def load_digits_pair(digits=(3, 8), *, split: str = "train", test_fraction: float = 0.3, n_samples: int | None = None,
                     seed: int = 0, split_seed: int = 0) -> Dataset:
    """Two classes of scikit-learn's bundled 8x8 digits (first digit +1, second -1), 0-16 grey levels.

    The train / test split is stratified and fixed by ``split_seed`` (the same for every ``seed``);
    ``n_samples`` draws a balanced subset of the split with ``seed`` (None keeps all of it)."""
    from sklearn.datasets import load_digits

    digits = tuple(int(d) for d in digits)
    if len(digits) != 2 or digits[0] == digits[1] or not all(0 <= d <= 9 for d in digits):
        raise ValueError(f"digits must name two different digits 0-9, got {list(digits)}")
    X_all, labels = load_digits(return_X_y=True)
    keep = np.isin(labels, digits)
    X, y = X_all[keep].astype(np.float64), np.where(labels[keep] == digits[0], 1.0, -1.0)
    in_test = stratified_test_mask(y, test_fraction, split_seed)
    part = in_test if _check_split(split) == "test" else ~in_test
    X, y = _subset(X[part], y[part], n_samples, seed)
    info = {"kind": "digits", "digits": list(digits), "split": split, "test_fraction": float(test_fraction),
            "seed": int(seed), "split_seed": int(split_seed), "n": int(X.shape[0])}
    return Dataset(X=X, y=y, info=info)


# --------------------------------------------------------------------------- a user's own data

CUSTOM_FORMATS = ("npz", "csv", "imagefolder")


class CustomDataError(ValueError):
    """The ``custom`` experiment's data or its configuration is unusable; the message names the config key."""


def _read_table(fmt: str, path: str, label_column: str | None, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Features and raw labels of one npz / csv file (``key`` names the config entry in errors)."""
    if not os.path.isfile(path):
        raise CustomDataError(f"custom.{key}: no such file {path!r}")
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in ("X", "y") if name not in archive.files]
            if missing:
                raise CustomDataError(f"custom.{key}: {path!r} lacks array(s) {missing} (it holds {archive.files}); "
                                      "save it with np.savez(path, X=features, y=labels)")
            X, labels = archive["X"], archive["y"]
    else:
        import pandas as pd

        frame = pd.read_csv(path)
        column = frame.columns[-1] if label_column is None else label_column
        if column not in frame.columns:
            raise CustomDataError(f"custom.label_column: {column!r} is not a column of {path!r} "
                                  f"(columns: {list(frame.columns)})")
        labels = frame[column].to_numpy()
        features = frame.drop(columns=[column])
        non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
        if non_numeric:
            raise CustomDataError(f"custom.{key}: non-numeric feature column(s) {non_numeric[:5]} in {path!r}")
        X = features.to_numpy(dtype=np.float64)
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise CustomDataError(f"custom.{key}: the features X of {path!r} are not numeric ({error})") from error
    labels = np.asarray(labels)
    if X.ndim != 2 or X.shape[0] < 2 or X.shape[1] < 1:
        raise CustomDataError(f"custom.{key}: X must be an (n, d) array with n >= 2, got shape {X.shape} in {path!r}")
    if labels.ndim != 1 or labels.shape[0] != X.shape[0]:
        raise CustomDataError(f"custom.{key}: shape mismatch in {path!r}: X has {X.shape[0]} rows but y has shape "
                              f"{labels.shape}")
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise CustomDataError(f"custom.{key}: X in {path!r} holds NaN or infinite values (first at row {bad[0]}, "
                              f"column {bad[1]})")
    if labels.dtype.kind in "fc" and not np.all(np.isfinite(labels)):
        raise CustomDataError(f"custom.{key}: y in {path!r} holds NaN or infinite labels")
    return X, labels


def _label_signs(labels: np.ndarray, classes, key: str) -> np.ndarray:
    """+1 for the first class, -1 for the second; every label must be one of the two."""
    found = np.unique(labels)
    if classes is None:
        if found.size != 2:
            raise CustomDataError(f"custom.{key}: binary classification needs exactly two label values, found "
                                  f"{found.size}: {found[:10].tolist()} (set custom.classes to pick two)")
        classes = found.tolist()
    as_text = [str(c) for c in classes]
    text = labels.astype(str)
    other = sorted(set(text.tolist()) - set(as_text))
    if other:
        raise CustomDataError(f"custom.{key}: labels {other[:10]} are not among custom.classes {as_text}")
    present = [c for c in as_text if c in set(text.tolist())]
    if len(present) != 2:
        raise CustomDataError(f"custom.{key}: both classes {as_text} must occur, found only {present}")
    return np.where(text == as_text[0], 1.0, -1.0)


def _custom_image_files(path, split: str, classes) -> tuple[list[str], np.ndarray]:
    """The ImageFolder files of one split and their labels; ``classes`` None = the two folders of train/."""
    root = os.fspath(path)
    if classes is None:
        train_dir = os.path.join(root, "train")
        if not os.path.isdir(train_dir):
            raise CustomDataError(f"custom.path: no ImageFolder split at {train_dir!r} (expected "
                                  "PATH/{train,test}/<class name>/ image folders)")
        classes = sorted(e for e in os.listdir(train_dir) if os.path.isdir(os.path.join(train_dir, e)))
        if len(classes) != 2:
            raise CustomDataError(f"custom.classes: {train_dir!r} holds {len(classes)} class folders "
                                  f"{classes[:10]}; name the two to use")
    try:
        return imagefolder_files(root, split, classes)
    except (FileNotFoundError, ValueError) as error:
        key = "classes" if isinstance(error, ValueError) else "path"
        raise CustomDataError(f"custom.{key}: {error}") from error


def load_custom(fmt: str, path, *, split: str = "train", test_path=None, test_fraction: float = 0.3, classes=None,
                label_column: str | None = None, image_size: int | None = None, n_samples: int | None = None,
                seed: int = 0) -> Dataset:
    """One split of a user's binary data set, labels +1 (first class) / -1 (second class).

    * ``fmt="npz"``: arrays ``X`` (n, d) and ``y`` (n,); ``fmt="csv"``: a header row, the label in
      ``label_column`` (default: the last column), every other column a numeric feature. The test split
      is ``test_path`` (same format) or, when that is None, a stratified ``test_fraction`` of ``path``
      (seed 0, the same for every ``seed``).
    * ``fmt="imagefolder"``: ``path/{train,test}/<class>/`` images, ``classes`` the two folder names;
      pixels on their 0-255 scale, area-averaged to ``image_size`` x ``image_size`` x 3 when given.

    ``classes`` (two label values, or folder names) picks the classes, the first one +1; None takes the
    two values present (sorted). ``n_samples`` draws a balanced subset with ``seed`` (None: all).
    Errors are :class:`CustomDataError` naming the config key."""
    if fmt not in CUSTOM_FORMATS:
        raise CustomDataError(f"custom.format must be one of {CUSTOM_FORMATS}, got {fmt!r}")
    split = _check_split(split)
    path = os.fspath(path)
    if fmt == "imagefolder":
        paths, y = _custom_image_files(path, split, classes)
        idx = balanced_indices(y, n_samples, seed)
        images = read_images([paths[i] for i in idx])
        X = downsample(images, image_size) if image_size else images.astype(np.float64).reshape(len(idx), -1)
        y = y[idx]
    else:
        if split == "test" and test_path is not None:
            X, labels = _read_table(fmt, os.fspath(test_path), label_column, "test_path")
            y = _label_signs(labels, classes, "test_path")
        else:
            X, labels = _read_table(fmt, path, label_column, "path")
            y = _label_signs(labels, classes, "path")
            if test_path is None:
                in_test = stratified_test_mask(y, test_fraction, 0)
                X, y = X[in_test == (split == "test")], y[in_test == (split == "test")]
        X, y = _subset(X, y, n_samples, seed)
    info = {"kind": "custom", "format": fmt, "path": path, "split": split, "seed": int(seed), "n": int(X.shape[0])}
    return Dataset(X=X, y=y, info=info)


def check_custom(fmt: str, path, *, test_path=None, test_fraction: float = 0.3, classes=None,
                 label_column: str | None = None, image_size: int | None = None, n_train: int | None = None) -> dict:
    """Validate the ``custom`` experiment's data before any job runs; returns a summary
    ({split: (n, d)}). Raises :class:`CustomDataError` naming the key and the problem: a missing
    file or folder, a label set that is not two classes, NaNs, mismatched shapes, too few samples."""
    shapes = {}
    for split in SPLITS:
        if fmt == "imagefolder":
            files, y = _custom_image_files(path, split, classes)
            from PIL import Image

            sizes = set()
            for file in files:
                with Image.open(file) as image:
                    sizes.add(image.size)
            if len(sizes) > 1:
                raise CustomDataError(f"custom.path: the {split} images have different sizes {sorted(sizes)[:5]}")
            (width, height), = sizes
            d = 3 * image_size ** 2 if image_size else 3 * width * height
            shapes[split] = (len(files), d)
        else:
            data = load_custom(fmt, path, split=split, test_path=test_path, test_fraction=test_fraction,
                               classes=classes, label_column=label_column)
            y = data.y
            shapes[split] = data.X.shape
        if n_train is not None and split == "train":
            try:
                balanced_indices(y, n_train, 0)
            except ValueError as error:
                raise CustomDataError(f"custom.n_train: {error}") from error
    if shapes["train"][1] != shapes["test"][1]:
        raise CustomDataError(f"custom.test_path: shape mismatch: training data have {shapes['train'][1]} features, "
                              f"test data {shapes['test'][1]}")
    return shapes
