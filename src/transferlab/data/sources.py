"""Data sources: each turns a user's DATA argument into labelled collections.

A source is registered with :func:`source` and answers two questions: does it recognise this
DATA (``matches``), and what does it hold (``read``). :func:`transferlab.data.load_data` asks
them in registration order; a new kind of input is one more registered function.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferlab.data import archives, builtin
from transferlab.data.collections import FileImages, LabeledImages
from transferlab.errors import DataError

VAL_DIR_NAMES = ("val", "valid", "validation", "test")
PATH_HEADERS = ("path", "file", "filename", "image", "filepath")


@dataclass
class RawData:
    """What a source holds: training items, optional given validation items, class names."""

    train: LabeledImages
    val: LabeledImages | None
    classes: list[str]
    description: str


@dataclass(frozen=True)
class Source:
    name: str
    matches: Callable[[str], bool]
    read: Callable[[str, Path | None], RawData]


SOURCES: list[Source] = []


def source(name: str, matches: Callable[[str], bool]) -> Callable:
    def decorator(read: Callable[[str, Path | None], RawData]) -> Callable[[str, Path | None], RawData]:
        SOURCES.append(Source(name, matches, read))
        return read

    return decorator


def find_source(spec: str) -> Source:
    for candidate in SOURCES:
        if candidate.matches(spec):
            return candidate
    names = ", ".join(builtin.BUILTINS)
    raise DataError(
        f"DATA '{spec}' is not a folder, an archive (.zip/.tar/.tar.gz), a .csv, or a built-in dataset",
        f"pass an existing path, or one of: {names}",
    )


# --------------------------------------------------------------------------- folders


HIDDEN_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name in HIDDEN_NAMES


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _is_hidden(p.name))


def _files(folder: Path) -> list[Path]:
    """Every non-hidden file below ``folder``, recursively, in a stable order."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(_is_hidden(part) for part in p.relative_to(folder).parts)
    )


def _unwrap(folder: Path) -> Path:
    """Descend through a lone wrapper folder (``data.zip`` -> ``data/`` -> ``train/`` ...).

    A folder is a wrapper when it holds exactly one subfolder and no files of its own; a class
    folder holds files, so a single-class dataset is never mistaken for a wrapper.
    """
    while True:
        subdirs = _subdirs(folder)
        own_files = [p for p in folder.iterdir() if p.is_file() and not _is_hidden(p.name)]
        if len(subdirs) == 1 and not own_files and _subdirs(subdirs[0]):
            folder = subdirs[0]
        else:
            return folder


def _class_folder_images(root: Path, classes: list[str] | None = None) -> tuple[FileImages, list[str]]:
    """Files under ``root/<class>/`` labelled by class; ``classes`` fixes the label order."""
    class_dirs = _subdirs(root)
    if not class_dirs:
        raise DataError(
            f"{root} has no class subfolders",
            "arrange images as DATA/<class>/<image> (or DATA/train/<class>/ and DATA/val/<class>/)",
        )
    names = classes if classes is not None else [d.name for d in class_dirs]
    index = {name: i for i, name in enumerate(names)}
    paths, labels = [], []
    for class_dir in class_dirs:
        if class_dir.name not in index:
            raise DataError(
                f"validation class '{class_dir.name}' ({class_dir}) does not exist in training",
                f"rename or remove it; training classes are: {', '.join(names)}",
            )
        for file in _files(class_dir):
            paths.append(file)
            labels.append(index[class_dir.name])
    return FileImages(paths, labels), names


def _split_dirs(folder: Path) -> tuple[Path, Path] | None:
    names = {d.name.lower(): d for d in _subdirs(folder)}
    val = next((names[n] for n in VAL_DIR_NAMES if n in names), None)
    return (names["train"], val) if "train" in names and val is not None else None


def _read_folder(root: Path, description: str) -> RawData:
    root = _unwrap(root)
    pair = _split_dirs(root)
    if pair is None:
        train, classes = _class_folder_images(root)
        return RawData(train, None, classes, description)
    train, classes = _class_folder_images(pair[0])
    val, _ = _class_folder_images(pair[1], classes)
    return RawData(train, val, classes, f"{description} ({pair[0].name}/ + {pair[1].name}/)")


@source("folder", matches=lambda spec: Path(spec).is_dir())
def read_folder(spec: str, _root: Path | None) -> RawData:
    return _read_folder(Path(spec), f"folder {spec}")


@source("archive", matches=lambda spec: archives.is_archive(Path(spec)))
def read_archive(spec: str, _root: Path | None) -> RawData:
    return _read_folder(archives.extract(spec), f"archive {spec}")


def read_any_images(spec: str, root: Path | None) -> RawData:
    """Like the registered sources, but a flat folder (or archive) of images is one class.

    For tasks that need no labels (GANs, style networks): ``faces/*.jpg`` and ``faces.zip`` work
    as they are, and class folders keep their labels (for class-conditional generation).
    """
    path = Path(spec)
    folder = archives.extract(spec) if archives.is_archive(path) else path if path.is_dir() else None
    if folder is not None:
        folder = _unwrap(folder)
        if not _subdirs(folder):
            files = _files(folder)
            return RawData(FileImages(files, [0] * len(files)), None, [folder.name], f"folder {spec}")
    return find_source(spec).read(spec, root)


# --------------------------------------------------------------------------- CSV


def _sorted_labels(values: set[str]) -> list[str]:
    """Numeric labels in numeric order ('2' before '10'), others alphabetically."""
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


@source("csv", matches=lambda spec: spec.lower().endswith(".csv") and Path(spec).is_file())
def read_csv(spec: str, _root: Path | None) -> RawData:
    """``path,label[,split]`` rows, paths relative to the CSV's folder; header optional."""
    csv_path = Path(spec)
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    has_header = bool(rows) and rows[0][1][0].strip().lower() in PATH_HEADERS
    header = [c.strip().lower() for c in rows.pop(0)[1]] if has_header else ["path", "label", "split"]
    if "label" not in header:
        raise DataError(f"{csv_path} has no 'label' column", "write rows as path,label (optionally a split column)")
    col_label = header.index("label")
    col_split = header.index("split") if "split" in header else None
    items: dict[str, list[tuple[Path, str]]] = {"train": [], "val": []}
    for line, row in rows:
        if len(row) <= col_label:
            raise DataError(f"{csv_path} line {line} has {len(row)} column(s)", "write rows as path,label[,split]")
        split = row[col_split].strip().lower() if col_split is not None and len(row) > col_split else "train"
        path = Path(row[0].strip())  # the path is always the first column
        target = "val" if split in VAL_DIR_NAMES else "train"
        items[target].append((path if path.is_absolute() else csv_path.parent / path, row[col_label].strip()))
    classes = _sorted_labels({label for _, label in items["train"]})
    unknown = sorted({label for _, label in items["val"]} - set(classes))
    if unknown:
        raise DataError(
            f"{csv_path}: validation label(s) {', '.join(map(repr, unknown))} never occur in training",
            "fix the labels, or move those rows to the training split",
        )
    index = {c: i for i, c in enumerate(classes)}

    def collect(pairs: list[tuple[Path, str]]) -> FileImages:
        return FileImages([p for p, _ in pairs], [index[label] for _, label in pairs])

    val = collect(items["val"]) if items["val"] else None
    return RawData(collect(items["train"]), val, classes, f"CSV {spec}")


# --------------------------------------------------------------------------- built-in names


@source("builtin", matches=lambda spec: spec.lower() in builtin.BUILTINS and not Path(spec).exists())
def read_builtin(spec: str, root: Path | None) -> RawData:
    train, val, classes = builtin.BUILTINS[spec.lower()](root)
    return RawData(train, val, classes, f"built-in {spec.lower()}")


def labels_to_indices(labels: np.ndarray, classes: list[str] | None) -> tuple[np.ndarray, list[str]]:
    """Label values -> contiguous indices and class names (for the array API).

    With ``classes`` given, labels must already be indices into it; otherwise every distinct
    label value becomes a class, in sorted order.
    """
    values = np.asarray(labels)
    if classes is None:
        uniques = np.unique(values)
        return np.searchsorted(uniques, values).astype(np.int64), [str(v) for v in uniques.tolist()]
    if (
        not np.issubdtype(values.dtype, np.integer)
        or values.min(initial=0) < 0
        or values.max(initial=0) >= len(classes)
    ):
        raise DataError(
            f"labels must be integers in 0..{len(classes) - 1} for the {len(classes)} classes named",
            "pass integer labels that index into classes, or leave classes out",
        )
    return values.astype(np.int64), list(classes)
