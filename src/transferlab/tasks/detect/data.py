"""Detection data: images and their boxes, read once into memory in one internal form.

Formats (the first that fits wins), each also under ``train/`` + ``val/`` (or ``test/``) and inside
an archive (extracted safely, once):

- Pascal VOC XML: ``images/`` + ``annotations/``; the VOC layout ``JPEGImages/`` + ``Annotations/`` +
  ``ImageSets/Main/{train,val}.txt``; or ``--images DIR --annotations DIR``.
- COCO JSON: ``--images DIR --annotations instances.json``, or DATA with ``images/`` + one ``*.json``.
- YOLO txt: ``images/`` + ``labels/`` (``class cx cy w h``, normalised) with ``classes.txt`` or ``data.yaml``.

Boxes are pixel ``x1, y1, x2, y2`` on the image as stored (its longer side at most :data:`MAX_SIDE`,
so a folder of camera photos fits in memory; mAP does not depend on the scale). Images without
boxes stay as negatives; VOC ``difficult`` objects are kept but marked, and the metric ignores them;
boxes partly outside the image are clipped; zero-area or inverted ones are dropped with one warning.
"""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET  # expat refuses external entities and entity expansion bombs
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.data import archives
from transferlab.data.images import IMAGE_EXTENSIONS, BadImage, load_rgb, warn_skipped
from transferlab.data.split import dense_parts, held_out_part
from transferlab.errors import DataError, UsageError

#: The longer side images are kept at in memory (they are trained and scored far smaller).
MAX_SIDE = 1024
LISTED = 5


@dataclass
class Annotation:
    """One image's boxes as read: pixel ``x1, y1, x2, y2``, class names, VOC's difficult flags."""

    image: Path
    boxes: list[list[float]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    difficult: list[bool] = field(default_factory=list)
    source: str = ""  # the annotation file (and line), for messages


@dataclass
class Split:
    """Images (uint8 3 x H x W), boxes (float N x 4, ``x1 y1 x2 y2``), labels (int64 N, from 0)
    and difficult flags (bool N) per image."""

    images: list[torch.Tensor]
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    difficult: list[torch.Tensor]
    names: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: list[int]) -> Split:
        def pick(items: list) -> list:
            return [items[i] for i in index]

        return Split(pick(self.images), pick(self.boxes), pick(self.labels), pick(self.difficult), pick(self.names))

    def target(self, i: int) -> dict[str, torch.Tensor]:
        """Image ``i``'s boxes as torchmetrics' ``MeanAveragePrecision`` takes them (difficult as crowd)."""
        return {"boxes": self.boxes[i], "labels": self.labels[i], "iscrowd": self.difficult[i].long()}

    @property
    def box_count(self) -> int:
        return sum(len(b) for b in self.boxes)


@dataclass
class DetectionData:
    train: Split
    val: Split
    classes: list[str]
    description: str

    def summary(self) -> str:
        return (f"{self.description}: {len(self.train)} training images ({self.train.box_count} boxes) and "
                f"{len(self.val)} held-out ({self.val.box_count} boxes), {len(self.classes)} classes")  # fmt: skip


# ----------------------------------------------------------------------------- the three formats


def _image_for(folder: Path, stem: str, source: str) -> Path:
    for suffix in IMAGE_EXTENSIONS:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    raise DataError(f"{source} annotates '{stem}', but {folder} has no image of that name",
                    "add the image, or remove its annotation")  # fmt: skip


def _images_in(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS}


def _number(node: ET.Element, tag: str, source: str) -> float:
    text = node.findtext(tag)
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"{source}: <{tag}> is '{text}', not a number", "fix the box in the XML file") from None


def read_voc_file(xml: Path, images: Path) -> Annotation:
    """One Pascal VOC XML file; its image is the one of the same stem in ``images``."""
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise DataError(f"{xml}:{line}:{column} is not well-formed XML ({exc.msg if hasattr(exc, 'msg') else exc})",
                        "fix or remove the file") from None  # fmt: skip
    named = root.findtext("filename") or ""
    stem = Path(named).stem if named and (images / named).is_file() else xml.stem
    found = Annotation(_image_for(images, stem, str(xml)), source=str(xml))
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{xml}: an <object> has no <bndbox>", "give every object xmin, ymin, xmax, ymax")
        found.boxes.append([_number(box, t, str(xml)) for t in ("xmin", "ymin", "xmax", "ymax")])
        found.names.append((obj.findtext("name") or "").strip())
        found.difficult.append((obj.findtext("difficult") or "0").strip() == "1")
    return found


def read_voc(images: Path, annotations: Path, stems: list[str] | None = None) -> list[Annotation]:
    """Every image of ``images`` with its XML (an image without one is a negative); with ``stems``
    (VOC's ImageSets lists) only those."""
    by_stem = {p.stem: p for p in sorted(annotations.glob("*.xml"))}
    if stems is not None:
        missing = [s for s in stems if s not in by_stem]
        if missing:
            raise DataError(f"the image set names {', '.join(missing[:LISTED])}, which {annotations} does not hold",
                            "restore the XML files, or remove the names from the list")  # fmt: skip
        return [read_voc_file(by_stem[s], images) for s in stems]
    read = [read_voc_file(xml, images) for xml in by_stem.values()]
    annotated = {a.image for a in read}
    return read + [Annotation(p) for p in _images_in(images).values() if p not in annotated]


def read_coco(images: Path, annotations: Path) -> tuple[list[Annotation], list[str]]:
    """A COCO ``instances.json`` (boxes ``x, y, w, h``); its categories in id order are the classes."""
    try:
        coco = json.loads(annotations.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{annotations}:{exc.lineno}:{exc.colno} is not valid JSON ({exc.msg})",
                        "fix or replace the file") from None  # fmt: skip
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise DataError(f"{annotations} is not a COCO instances file (no 'images' list)",
                        "give the instances JSON with 'images', 'annotations' and 'categories'")  # fmt: skip
    try:
        categories = {c["id"]: str(c["name"]) for c in sorted(coco.get("categories", []), key=lambda c: c["id"])}
        by_id: dict[Any, Annotation] = {}
        for entry in coco["images"]:
            path = images / entry["file_name"]
            if not path.is_file():
                raise DataError(f"{annotations} lists the image {entry['file_name']}, which {images} does not hold",
                                "add the image, or remove it from the JSON")  # fmt: skip
            by_id[entry["id"]] = Annotation(path, source=str(annotations))
        for ann in coco.get("annotations", []):
            if ann["image_id"] not in by_id or ann["category_id"] not in categories:
                raise DataError(f"{annotations}: annotation {ann.get('id')} names an unknown image or category",
                                "give every annotation an image_id and category_id listed in the file")  # fmt: skip
            x, y, w, h = (float(v) for v in ann["bbox"])
            target = by_id[ann["image_id"]]
            target.boxes.append([x, y, x + w, y + h])
            target.names.append(categories[ann["category_id"]])
            target.difficult.append(bool(ann.get("iscrowd", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{annotations} lacks a COCO field or has a malformed one ({exc!r})",
                        "give images id + file_name, annotations image_id, category_id, bbox") from None  # fmt: skip
    return list(by_id.values()), list(categories.values())


def _yolo_names(root: Path) -> list[str]:
    if (root / "classes.txt").is_file():
        return [line.strip() for line in (root / "classes.txt").read_text().splitlines() if line.strip()]
    for name in ("data.yaml", "dataset.yaml"):
        if (root / name).is_file():
            import yaml

            try:
                names = (yaml.safe_load((root / name).read_text()) or {}).get("names")
            except yaml.YAMLError as exc:
                raise DataError(f"{root / name} is not valid YAML ({str(exc).splitlines()[0]})", "fix it") from None
            if isinstance(names, dict):  # ultralytics writes {0: name, 1: name}
                names = [names[k] for k in sorted(names)]
            if isinstance(names, list):
                return [str(n) for n in names]
    raise DataError(f"{root} has YOLO labels/ but no classes.txt or data.yaml with 'names'",
                    "add classes.txt with one class name a line")  # fmt: skip


def read_yolo(images: Path, labels: Path, names: list[str]) -> list[Annotation]:
    """YOLO txt labels (``class cx cy w h`` in [0, 1]); an image without a label file is a negative."""
    from PIL import Image

    found = _images_in(images)
    read = []
    for txt in sorted(labels.glob("*.txt")):
        if txt.stem not in found:
            raise DataError(f"{txt} has no image of the same name in {images}", "add the image, or remove the labels")
        with Image.open(found[txt.stem]) as image:
            width, height = image.size
        ann = Annotation(found.pop(txt.stem), source=str(txt))
        for number, line in enumerate(txt.read_text().splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            try:
                index, cx, cy, w, h = int(fields[0]), *(float(v) for v in fields[1:5])
                assert len(fields) == 5
            except (ValueError, AssertionError):
                raise DataError(f"{txt}:{number} is not 'class cx cy w h'", "write one box a line") from None
            if not 0 <= index < len(names):
                raise DataError(f"{txt}:{number} has class {index}, beyond the {len(names)} classes named",
                                "add the class to classes.txt, or fix the label")  # fmt: skip
            ann.boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
            ann.names.append(names[index])
            ann.difficult.append(False)
        read.append(ann)
    return read + [Annotation(p) for p in found.values()]


# ----------------------------------------------------------------------------- finding the layout


def _part(folder: Path) -> tuple[list[Annotation], list[str]] | None:
    """One part (a folder of images/ + annotations/, labels/ or a JSON), or None when it is none."""
    images = folder / "images"
    if not images.is_dir():
        return None
    if (folder / "annotations").is_dir():
        return read_voc(images, folder / "annotations"), []
    if (folder / "labels").is_dir():
        names = _yolo_names(folder)
        return read_yolo(images, folder / "labels", names), names
    jsons = sorted(folder.glob("*.json")) or sorted((folder / "annotations").glob("*.json"))
    if len(jsons) == 1:
        return read_coco(images, jsons[0])
    return None


def find_layout(data: str | Path) -> tuple[dict[str, tuple[list[Annotation], list[str]]], str]:
    """Split name -> (annotations, class names the format declares) of DATA, and a description."""

    path = Path(data)
    if archives.is_archive(path):
        path = archives.extract(path)
    if not path.is_dir():
        raise UsageError(f"{data} is not a folder or an archive", "give a folder with images/ and annotations/")
    inner = [p for p in path.iterdir() if p.is_dir()]
    if len(inner) == 1 and not any((path / d).is_dir() for d in ("images", "JPEGImages", "train")):
        path = inner[0]  # an archive's single top folder
    if (path / "JPEGImages").is_dir() and (path / "Annotations").is_dir():
        parts = {}
        for part in ("train", "val"):
            listed = path / "ImageSets" / "Main" / f"{part}.txt"
            if listed.is_file():
                stems = [s.split()[0] for s in listed.read_text().splitlines() if s.strip()]
                parts[part] = (read_voc(path / "JPEGImages", path / "Annotations", stems), [])
        return parts or {"train": (read_voc(path / "JPEGImages", path / "Annotations"), [])}, f"VOC {path.name}"
    whole = _part(path)
    if whole is not None:
        return {"train": whole}, path.name
    parts = {p: found for p in ("train", "val", "test") if (found := _part(path / p)) is not None}
    if parts:
        return parts, path.name
    raise UsageError(
        f"{data} holds no detection layout (images/ with annotations/, labels/ or a COCO JSON; or VOC)",
        "arrange it as DATA/images/*.jpg + DATA/annotations/*.xml, or pass --images/--annotations",
    )


# ----------------------------------------------------------------------------- into tensors


def read_classes(spec: str | None) -> list[str]:
    """``--classes``: a comma list, or a file of one name a line."""
    if not spec:
        return []
    path = Path(spec)
    lines = path.read_text().splitlines() if path.is_file() else spec.split(",")
    return [n.strip() for n in lines if n.strip() and not n.strip().startswith("#")]


def _load_image(path: Path) -> tuple[torch.Tensor, float]:
    """The image as uint8 3 x H x W, its longer side at most MAX_SIDE, and the scale applied
    (raises ``BadImage`` for a file that is no readable image)."""
    from PIL import Image

    image = load_rgb(path)
    scale = min(1.0, MAX_SIDE / max(image.size))
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).contiguous(), scale


def _to_split(annotations: list[Annotation], classes: list[str], dropped: list[str], bad: list) -> Split:
    """The annotations as tensors; an unreadable image is skipped (listed in ``bad``), as classify does."""

    index = {name: i for i, name in enumerate(classes)}
    out = Split([], [], [], [], [])
    for ann in annotations:
        try:
            image, scale = _load_image(ann.image)
        except BadImage as exc:
            bad.append(exc)
            continue
        h, w = image.shape[-2:]
        boxes = torch.tensor(ann.boxes, dtype=torch.float32).reshape(-1, 4) * scale
        clipped = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                               boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], 1)  # fmt: skip
        keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
        for i in (~keep).nonzero().flatten().tolist():
            dropped.append(f"{ann.source or ann.image}: box {i + 1} {[round(v / scale, 1) for v in boxes[i].tolist()]}")
        out.images.append(image)
        out.boxes.append(clipped[keep])
        out.labels.append(torch.tensor([index[n] for n in ann.names], dtype=torch.int64)[keep])
        out.difficult.append(torch.tensor(ann.difficult, dtype=torch.bool)[keep])
        out.names.append(ann.image.stem)
    return out


def _check_classes(parts: dict[str, list[Annotation]], given: list[str], declared: list[str]) -> list[str]:
    """The class list: ``--classes`` if given (every name must be in it), else the format's own
    list, else the names found (sorted)."""
    found = sorted({n for anns in parts.values() for a in anns for n in a.names})
    if "" in found:
        where = next(a.source for anns in parts.values() for a in anns if "" in a.names)
        raise DataError(f"{where}: an object has no class name", "give every <object> a <name>")
    classes = given or declared or found
    unknown = [n for n in found if n not in classes]
    if unknown:
        where = next(a.source for anns in parts.values() for a in anns if unknown[0] in a.names)
        raise DataError(f"{where} has the class '{unknown[0]}', which is not among the classes {classes}",
                        "add it to --classes, or fix the annotation")  # fmt: skip
    return classes


def load_detection(
    data: str | Path | None = None, *, images: str | None = None, annotations: str | None = None,
    val_images: str | None = None, val_annotations: str | None = None, classes: str | None = None,
    val_fraction: float = 0.2, seed: int = 0, hold_out: bool = True,
) -> DetectionData:  # fmt: skip
    """Read DATA (or ``--images/--annotations``) into memory; split off a held-out part if none is
    given (``hold_out=False``: none is split off and ``val`` is empty unless DATA has one)."""
    parts, description = dense_parts(data, images, annotations, val_images, val_annotations, pair=_given,
                                     find_layout=find_layout, flag="--annotations")  # fmt: skip
    declared = next((names for _, names in parts.values() if names), [])
    names = _check_classes({p: anns for p, (anns, _) in parts.items()}, read_classes(classes), declared)

    dropped: list[str] = []
    bad: list = []
    splits = {p: _to_split(anns, names, dropped, bad) for p, (anns, _) in parts.items()}
    warn_skipped(bad)
    if dropped:
        listed = "\n".join(f"  {d}" for d in dropped[:LISTED]) + (f"\n  ... and {len(dropped) - LISTED} more"
                                                                  if len(dropped) > LISTED else "")  # fmt: skip
        warnings.warn(f"dropped {len(dropped)} zero-area or inverted box(es):\n{listed}", stacklevel=2)
    if not any(s.box_count for s in splits.values()):
        raise DataError(f"{description} has no box in any image", "annotate the objects to detect")
    train, val = held_out_part(splits, val_fraction if hold_out else 0.0, seed, description,
                               Split([], [], [], [], []), "images and annotations")  # fmt: skip
    return DetectionData(train, val, names, description)


def _given(images: Path, annotations: Path) -> tuple[list[Annotation], list[str]]:
    if not images.is_dir():
        raise UsageError(f"--images {images} is not a folder", "give the folder of images")
    if annotations.is_file() and annotations.suffix.lower() == ".json":
        return read_coco(images, annotations)
    if annotations.is_dir():  # (annotations, the classes they declare: VOC XML names none, YOLO's classes.txt)
        if any(annotations.glob("*.xml")):
            return read_voc(images, annotations), []
        names = _yolo_names(annotations.parent)
        return read_yolo(images, annotations, names), names
    raise UsageError(f"--annotations {annotations} is neither a COCO JSON file nor a folder of XML/txt files",
                     "give instances.json, a folder of VOC XML files, or YOLO labels/")  # fmt: skip
