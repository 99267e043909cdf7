"""The data layer: every kind of DATA, the split, and every bad-input case."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile

import numpy as np
import pytest

from conftest import make_class_folder, write_image
from transferlab.data import SkippedImagesWarning, from_arrays, load_data
from transferlab.data.builtin import read_idx
from transferlab.errors import DataError


def test_class_folder_with_stratified_split(tmp_path):
    make_class_folder(tmp_path / "d", {"a": 10, "b": 5, "c": 1})
    splits = load_data(tmp_path / "d", val_fraction=0.2, seed=3)
    assert splits.classes == ["a", "b", "c"]
    assert np.bincount(splits.val.labels, minlength=3).tolist() == [2, 1, 0]  # singleton stays in train
    assert np.bincount(splits.train.labels, minlength=3).tolist() == [8, 4, 1]
    assert not set(splits.train.paths) & set(splits.val.paths)
    again = load_data(tmp_path / "d", val_fraction=0.2, seed=3)
    other = load_data(tmp_path / "d", val_fraction=0.2, seed=4)
    assert again.val.paths == splits.val.paths and other.val.paths != splits.val.paths


def test_train_val_folders_and_nested_files(tmp_path):
    make_class_folder(tmp_path / "d" / "train", {"x": 3, "y": 3})
    make_class_folder(tmp_path / "d" / "test", {"x": 2, "y": 1})
    write_image(tmp_path / "d" / "train" / "x" / "sub" / "deep.jpg")
    splits = load_data(tmp_path / "d")
    assert splits.val_origin == "given" and len(splits.train) == 7 and len(splits.val) == 3


def test_val_class_unknown_to_training(tmp_path, cli):
    from conftest import assert_user_error

    make_class_folder(tmp_path / "d" / "train", {"x": 2, "y": 2})
    make_class_folder(tmp_path / "d" / "val", {"x": 1, "z": 1})
    assert_user_error(cli("data", tmp_path / "d"), "validation class 'z'")


def _zip(path, entries: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as handle:
        for name, data in entries.items():
            handle.writestr(name, data)
    return path


def _png_bytes(color=(10, 200, 10)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "PNG")
    return buffer.getvalue()


def test_zip_archive_with_wrapper_folder_is_extracted_once(tmp_path, isolated_environment):
    entries = {f"mydata/{c}/{i}.png": _png_bytes((i * 20, 50 * k, 9)) for k, c in enumerate("ab") for i in range(4)}
    archive = _zip(tmp_path / "set.zip", entries)
    first = load_data(archive)
    assert first.classes == ["a", "b"] and len(first.train) + len(first.val) == 8
    extracted = list((isolated_environment / "archives").iterdir())
    second = load_data(archive)
    assert list((isolated_environment / "archives").iterdir()) == extracted
    assert second.train.paths == first.train.paths


def test_tar_gz_archive(tmp_path):
    src = make_class_folder(tmp_path / "src", {"cat": 3, "dog": 3})
    with tarfile.open(tmp_path / "set.tar.gz", "w:gz") as handle:
        handle.add(src, arcname=".")
    assert load_data(tmp_path / "set.tar.gz").classes == ["cat", "dog"]


def test_zip_slip_is_refused(tmp_path, cli):
    from conftest import assert_user_error

    archive = _zip(tmp_path / "evil.zip", {"a/1.png": _png_bytes(), "../../evil.png": _png_bytes()})
    assert_user_error(cli("data", archive), "unsafe entry '../../evil.png'")
    assert not (tmp_path.parent / "evil.png").exists()


def test_tar_link_outside_is_refused(tmp_path):
    with tarfile.open(tmp_path / "evil.tar", "w") as handle:
        link = tarfile.TarInfo("a/passwd.png")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        handle.addfile(link)
    with pytest.raises(DataError, match="outside the target folder"):
        load_data(tmp_path / "evil.tar")


def test_tar_absolute_path_is_refused(tmp_path):
    with tarfile.open(tmp_path / "abs.tar", "w") as handle:
        data = _png_bytes()
        info = tarfile.TarInfo("/tmp/abs.png")
        info.size = len(data)
        handle.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match="unsafe entry '/tmp/abs\\.png'"):
        load_data(tmp_path / "abs.tar")


def test_csv_with_header_split_and_relative_paths(tmp_path):
    make_class_folder(tmp_path / "img", {"a": 3, "b": 3})
    rows = ["filename,label,split"]
    rows += [f"img/a/{i}.png,10,{'val' if i == 0 else 'train'}" for i in range(3)]
    rows += [f"img/b/{i}.png,2,{'val' if i == 0 else 'train'}" for i in range(3)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    splits = load_data(tmp_path / "labels.csv")
    assert splits.classes == ["2", "10"]  # numeric labels in numeric order
    assert splits.val_origin == "given" and len(splits.val) == 2 and len(splits.train) == 4


def test_csv_without_header(tmp_path):
    make_class_folder(tmp_path / "img", {"a": 3, "b": 3})
    rows = [f"{tmp_path}/img/{c}/{i}.png,{c}" for c in "ab" for i in range(3)]
    (tmp_path / "l.csv").write_text("\n".join(rows))
    assert load_data(tmp_path / "l.csv", val_fraction=0.34).classes == ["a", "b"]


def test_csv_validation_label_unknown(tmp_path, cli):
    from conftest import assert_user_error

    make_class_folder(tmp_path / "img", {"a": 2, "b": 2})
    rows = ["path,label,split", "img/a/0.png,a,train", "img/b/0.png,b,train", "img/b/1.png,zebra,val"]
    (tmp_path / "l.csv").write_text("\n".join(rows))
    assert_user_error(cli("data", tmp_path / "l.csv"), "'zebra'")


def test_arrays_and_validation_labels():
    x = np.random.default_rng(0).integers(0, 255, (12, 8, 8), dtype=np.uint8)
    y = np.array(["cat", "dog", "eel"] * 4)
    splits = from_arrays(x, y, x[:3], y[:3])
    assert splits.classes == ["cat", "dog", "eel"] and splits.val.labels.tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="yak"):
        from_arrays(x, y, x[:1], np.array(["yak"]))


def test_digits_builtin_is_offline():
    splits = load_data("digits")
    assert splits.num_classes == 10 and len(splits.train) + len(splits.val) == 1797
    image = splits.train.image(0)
    assert image.mode == "RGB" and image.size == (8, 8) and max(image.getextrema()[0]) > 200


def test_cifar10_offline_without_copy_is_one_clear_error(cli, tmp_path):
    from conftest import assert_user_error

    assert_user_error(cli("data", "cifar10", "--data-root", tmp_path), "cifar10 is not in", "--data-root")


def _write_idx(path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def test_mnist_from_a_local_torchvision_copy(tmp_path, shared_data):
    """Real MNIST digits (from ../shared) laid out as torchvision expects, used via --data-root."""
    digits = np.load(shared_data / "digits-mnist-usps.npz")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte", digits["mnist_train_x"][:600])
    _write_idx(raw / "train-labels-idx1-ubyte", digits["mnist_train_y"][:600])
    _write_idx(raw / "t10k-images-idx3-ubyte", digits["mnist_val_x"][:100])
    _write_idx(raw / "t10k-labels-idx1-ubyte", digits["mnist_val_y"][:100])
    splits = load_data("mnist", data_root=tmp_path)
    assert splits.num_classes == 10 and len(splits.train) == 600 and len(splits.val) == 100
    assert splits.train.labels.tolist()[:20] == digits["mnist_train_y"][:20].tolist()


def test_fashion_mnist_from_debian_layout(tmp_path, monkeypatch):
    from transferlab.data import builtin

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    monkeypatch.setattr(builtin, "DEBIAN_FASHION_MNIST", tmp_path)
    splits = load_data("fashion-mnist")
    assert splits.classes[9] == "Ankle boot" and len(splits.train) == 40 and len(splits.val) == 20
    assert read_idx(tmp_path / "train-images-idx3-ubyte.gz").shape == (40, 28, 28)


# --------------------------------------------------------------------------- bad input


def test_bad_files_are_listed_and_skipped_with_one_warning(tmp_path):
    root = make_class_folder(tmp_path / "d", {"a": 4, "b": 4})
    (root / "a" / "notes.txt").write_text("not an image")
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.warns(SkippedImagesWarning) as record:
        splits = load_data(root)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 2 unusable file(s)" in message and "notes.txt" in message and "broken.jpg" in message
    assert len(splits.train) + len(splits.val) == 8 and len(splits.skipped) == 2


def test_strict_makes_bad_files_an_error(tmp_path, cli):
    from conftest import assert_user_error

    root = make_class_folder(tmp_path / "d", {"a": 2, "b": 2})
    (root / "b" / "broken.png").write_bytes(b"garbage")
    assert_user_error(cli("data", root, "--strict"), "1 file(s) are not usable", "broken.png")


def test_bad_files_at_the_cli_are_a_warning_not_an_error(tmp_path, cli):
    root = make_class_folder(tmp_path / "d", {"a": 2, "b": 2})
    (root / "b" / "broken.png").write_bytes(b"garbage")
    code, _, err = cli("data", root)
    assert code == 0 and "warning: skipped 1 unusable file(s)" in err and "broken.png" in err


def test_empty_dataset(tmp_path, cli):
    from conftest import assert_user_error

    (tmp_path / "d" / "a").mkdir(parents=True)
    (tmp_path / "d" / "b").mkdir(parents=True)
    assert_user_error(cli("data", tmp_path / "d"), "holds no usable images")


def test_folder_without_class_subfolders(tmp_path, cli):
    from conftest import assert_user_error

    write_image(tmp_path / "d" / "a.png")
    assert_user_error(cli("data", tmp_path / "d"), "no class subfolders")


def test_empty_class(tmp_path, cli):
    from conftest import assert_user_error

    make_class_folder(tmp_path / "d", {"a": 2, "b": 2})
    (tmp_path / "d" / "c").mkdir()
    assert_user_error(cli("data", tmp_path / "d"), "'c' have no usable training images")


def test_class_whose_files_are_all_bad_is_empty(tmp_path):
    make_class_folder(tmp_path / "d", {"a": 2, "b": 2})
    (tmp_path / "d" / "c").mkdir()
    (tmp_path / "d" / "c" / "x.jpg").write_text("no")
    with pytest.warns(SkippedImagesWarning), pytest.raises(DataError, match="'c'"):
        load_data(tmp_path / "d")


def test_single_class(tmp_path, cli):
    from conftest import assert_user_error

    make_class_folder(tmp_path / "d", {"only": 3})
    assert_user_error(cli("data", tmp_path / "d"), "only one class (only)")


def test_unknown_data(cli):
    from conftest import assert_user_error

    assert_user_error(cli("data", "no/such/place"), "is not a folder", "digits")


def test_data_command_shows_counts(tmp_path, cli):
    make_class_folder(tmp_path / "d", {"a": 5, "b": 5})
    code, out, _ = cli("data", tmp_path / "d", "--json")
    assert code == 0
    import json

    payload = json.loads(out)
    assert [c["train"] + c["val"] for c in payload["classes"]] == [5, 5]


def test_csv_row_errors_name_the_real_line(tmp_path, cli):
    make_class_folder(tmp_path / "img", {"a": 2, "b": 2})
    (tmp_path / "l.csv").write_text("image,label\n\nimg/a/0.png,a\nimg/a/1.png\n")
    from conftest import assert_user_error

    assert_user_error(cli("data", tmp_path / "l.csv"), "line 4 has 1 column(s)")
