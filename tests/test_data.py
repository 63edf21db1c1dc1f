"""convexadv.data: CIFAR-10 pair loading (ImageFolder and torchvision), downsampling, 2-D and regression sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from convexadv import data
from convexadv.data import Dataset, downsample, load_cifar_pair, load_regression, random_2d

SHARED_CIFAR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-jpeg"


def test_downsample_matches_torch_area_pooling():
    images = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3)).astype(np.uint8)
    ours = downsample(images, 7)
    t = torch.as_tensor(images, dtype=torch.float64).permute(0, 3, 1, 2)
    pooled = torch.nn.functional.adaptive_avg_pool2d(t, 7).reshape(4, -1).numpy()
    area = torch.nn.functional.interpolate(t, size=(7, 7), mode="area").reshape(4, -1).numpy()
    assert ours.shape == (4, 147)
    np.testing.assert_allclose(ours, pooled, atol=1e-10)
    np.testing.assert_allclose(ours, area, atol=1e-10)
    assert 0 <= ours.min() and ours.max() <= 255


def test_downsample_of_constant_image_keeps_the_value():
    images = np.full((2, 32, 32, 3), 200, dtype=np.uint8)
    np.testing.assert_allclose(downsample(images, 5), 200.0)


def test_downsample_rejects_bad_input():
    with pytest.raises(ValueError, match="images must be"):
        downsample(np.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match="size"):
        downsample(np.zeros((1, 32, 32, 3)), 0)


def _image_folder(root: Path, counts: dict[str, int], split="train"):
    from PIL import Image

    rng = np.random.default_rng(1)
    for name, count in counts.items():
        folder = root / split / name
        folder.mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


def test_imagefolder_pair_labels_and_balanced_seeded_subset(tmp_path):
    root = _image_folder(tmp_path, {"automobile": 6, "horse": 8, "cat": 2})
    full = load_cifar_pair(root, split="train")
    assert full.X.shape == (14, 147)
    assert (full.y == 1).sum() == 6 and (full.y == -1).sum() == 8
    sub = load_cifar_pair(root, split="train", n_samples=6, seed=3)
    assert sub.X.shape == (6, 147) and sub.y.sum() == 0
    again = load_cifar_pair(root, split="train", n_samples=6, seed=3)
    np.testing.assert_array_equal(sub.X, again.X)
    other = load_cifar_pair(root, split="train", n_samples=6, seed=4)
    assert not np.array_equal(sub.X, other.X)
    flipped = load_cifar_pair(root, split="train", classes=("horse", "automobile"))
    assert (flipped.y == 1).sum() == 8


def test_imagefolder_errors_name_what_is_missing(tmp_path):
    root = _image_folder(tmp_path, {"automobile": 2})
    with pytest.raises(FileNotFoundError, match="horse"):
        load_cifar_pair(root, split="train")
    with pytest.raises(FileNotFoundError, match="test"):
        load_cifar_pair(root, split="test")
    with pytest.raises(ValueError, match="only 2 exist"):
        _image_folder(tmp_path / "b", {"automobile": 2, "horse": 2})
        load_cifar_pair(tmp_path / "b", split="train", n_samples=6)
    with pytest.raises(ValueError, match="source"):
        load_cifar_pair(root, source="kaggle")
    with pytest.raises(ValueError, match="two different classes"):
        load_cifar_pair(root, classes=("horse", "horse"))


def test_torchvision_source_uses_cifar10_download(monkeypatch, tmp_path):
    calls = []

    class FakeCIFAR10:
        classes = list(data.CIFAR10_CLASSES)

        def __init__(self, root, train, download):
            calls.append((root, train, download))
            rng = np.random.default_rng(int(train))
            self.targets = [1, 7, 3, 1, 7, 7, 1, 0]
            self.data = rng.integers(0, 256, size=(len(self.targets), 32, 32, 3)).astype(np.uint8)

    import torchvision

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    test = load_cifar_pair(tmp_path, split="test", source="torchvision")
    assert calls == [(str(tmp_path), False, True)]
    assert test.X.shape == (6, 147)
    np.testing.assert_array_equal(test.y, [1, -1, 1, -1, -1, 1])
    sub = load_cifar_pair(tmp_path, split="train", source="torchvision", n_samples=4, seed=0)
    assert sub.y.sum() == 0
    with pytest.raises(ValueError, match="unknown CIFAR-10 class"):
        load_cifar_pair(tmp_path, source="torchvision", classes=("automobile", "unicorn"))


@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason="shared CIFAR-10 ImageFolder data missing")
def test_shared_cifar_pair_matches_the_paper_setup():
    test = load_cifar_pair(SHARED_CIFAR, split="test")
    assert test.X.shape == (2000, 147)
    assert (test.y == 1).sum() == 1000
    assert 0 <= test.X.min() and test.X.max() <= 255
    train = load_cifar_pair(SHARED_CIFAR, split="train", n_samples=600, seed=0)
    assert train.X.shape == (600, 147) and train.y.sum() == 0


def test_random_2d_is_balanced_separated_and_seeded():
    a = random_2d(34, seed=0, min_separation=0.2)
    assert a.X.shape == (34, 2) and a.y.sum() == 0
    dist = np.abs(a.X[:, None, :] - a.X[None, :, :]).max(axis=2) + np.eye(34) * 10
    assert dist.min() >= 0.2
    np.testing.assert_array_equal(a.X, random_2d(34, seed=0, min_separation=0.2).X)
    assert not np.array_equal(a.X, random_2d(34, seed=1, min_separation=0.2).X)
    assert np.all(np.abs(random_2d(40, seed=2).X) <= 1)
    with pytest.raises(ValueError, match="cannot place"):
        random_2d(100, min_separation=1.5)


def test_regression_is_standardised_on_the_training_split():
    train, test = load_regression("diabetes", test_fraction=0.2, seed=0)
    assert train.X.shape[1] == test.X.shape[1] == 10
    assert train.X.shape[0] + test.X.shape[0] == 442
    np.testing.assert_allclose(train.X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(train.X.std(axis=0), 1)
    assert abs(train.y.mean()) < 1e-12 and abs(train.y.std() - 1) < 1e-12
    with pytest.raises(ValueError, match="diabetes"):
        load_regression("boston")


def test_dataset_round_trip(tmp_path):
    ds = random_2d(10, seed=5)
    ds.save(tmp_path / "d.npz")
    back = Dataset.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(back.X, ds.X)
    np.testing.assert_array_equal(back.y, ds.y)
    assert back.info == ds.info


def test_digits_pair_split_is_fixed_stratified_and_disjoint():
    train = data.load_digits_pair((3, 8), split="train", test_fraction=0.3)
    test = data.load_digits_pair((3, 8), split="test", test_fraction=0.3)
    assert train.X.shape[1] == test.X.shape[1] == 64
    assert train.X.shape[0] + test.X.shape[0] == 357  # 183 threes + 174 eights
    assert 0 <= train.X.min() and train.X.max() <= 16
    # stratified: both labels in both splits, in about the same proportion
    for part in (train, test):
        assert abs((part.y == 1).mean() - 183 / 357) < 0.02
    # the same split for every seed; no test image in the training split
    again = data.load_digits_pair((3, 8), split="test", test_fraction=0.3, seed=5)
    np.testing.assert_array_equal(test.X, again.X)
    # the two splits partition the pair: together they hold every 3 and 8 exactly once
    from sklearn.datasets import load_digits

    X_all, labels = load_digits(return_X_y=True)
    pair = X_all[np.isin(labels, (3, 8))]
    both = np.vstack([train.X, test.X])
    np.testing.assert_array_equal(both[np.lexsort(both.T)], pair[np.lexsort(pair.T)])
    sub = data.load_digits_pair((3, 8), split="train", n_samples=20, seed=1)
    assert sub.X.shape == (20, 64) and sub.y.sum() == 0
    with pytest.raises(ValueError, match="two different digits"):
        data.load_digits_pair((3, 3))


def _save_npz(path, X, y):
    np.savez(path, X=X, y=y)
    return str(path)


def test_custom_npz_and_csv_give_the_same_data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    labels = np.where(rng.random(40) < 0.5, "cat", "dog")
    labels[:2] = ["cat", "dog"]
    npz = _save_npz(tmp_path / "d.npz", X, labels)
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(5)])
    frame.insert(2, "label", labels)
    frame.to_csv(tmp_path / "d.csv", index=False)
    for fmt, path, extra in (("npz", npz, {}), ("csv", str(tmp_path / "d.csv"), {"label_column": "label"})):
        train = data.load_custom(fmt, path, split="train", classes=["dog", "cat"], **extra)
        test = data.load_custom(fmt, path, split="test", classes=["dog", "cat"], **extra)
        assert train.X.shape[0] + test.X.shape[0] == 40 and train.X.shape[1] == 5
        # "dog" (the first class) is +1
        dogs = (labels == "dog").sum()
        assert (train.y == 1).sum() + (test.y == 1).sum() == dogs
        assert data.check_custom(fmt, path, classes=["dog", "cat"], **extra) == {"train": train.X.shape,
                                                                                  "test": test.X.shape}


@pytest.mark.parametrize(
    "make, key",
    [
        (lambda p: str(p / "missing.npz"), "custom.path: no such file"),
        (lambda p: _save_npz(p / "three.npz", np.zeros((9, 2)), np.arange(9) % 3), "exactly two label values"),
        (lambda p: _save_npz(p / "nan.npz", np.where(np.eye(6, 2) > 0, np.nan, 1.0), np.arange(6) % 2), "NaN"),
        (lambda p: _save_npz(p / "shape.npz", np.zeros((6, 2)), np.arange(5) % 2), "shape mismatch"),
        (lambda p: _save_npz(p / "one.npz", np.zeros((6, 2)), np.zeros(6)), "exactly two label values"),
    ],
    ids=["missing", "three-classes", "nan", "shape", "one-class"],
)
def test_custom_data_problems_are_named_before_anything_runs(tmp_path, make, key):
    with pytest.raises(data.CustomDataError, match=key):
        data.check_custom("npz", make(tmp_path))


def test_custom_test_file_must_match_the_features(tmp_path):
    train = _save_npz(tmp_path / "train.npz", np.ones((8, 3)), np.arange(8) % 2)
    test = _save_npz(tmp_path / "test.npz", np.ones((4, 2)), np.arange(4) % 2)
    with pytest.raises(data.CustomDataError, match="custom.test_path: shape mismatch"):
        data.check_custom("npz", train, test_path=test)
    with pytest.raises(data.CustomDataError, match="not among custom.classes"):
        data.check_custom("npz", train, classes=[0, 7])


def test_custom_imagefolder_reads_pixels_and_names_missing_classes(tmp_path):
    root = _image_folder(tmp_path, {"a": 3, "b": 2})
    _image_folder(tmp_path, {"a": 1, "b": 1}, split="test")
    train = data.load_custom("imagefolder", root, split="train", image_size=4)
    assert train.X.shape == (5, 48) and (train.y == 1).sum() == 3
    assert data.check_custom("imagefolder", root) == {"train": (5, 3 * 32 * 32), "test": (2, 3 * 32 * 32)}
    with pytest.raises(data.CustomDataError, match="custom.path"):
        data.check_custom("imagefolder", root, classes=["a", "c"])


def test_torchvision_without_network_says_how_to_use_a_local_copy(monkeypatch, tmp_path):
    import urllib.error

    import torchvision

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(RuntimeError, match="cifar.source: imagefolder") as info:
        load_cifar_pair(tmp_path, split="test", source="torchvision")
    assert "could not download CIFAR-10" in str(info.value) and isinstance(info.value.__cause__, OSError)
