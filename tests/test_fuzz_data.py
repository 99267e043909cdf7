"""Property-based fuzzing of the data layer (hypothesis): whatever bytes, modes, sizes, archive
member names or CSV text come in, only the project's own errors come out (never a traceback),
and nothing is written outside the cache."""

from __future__ import annotations

import contextlib
import io
import tarfile
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from transferlab import paths
from transferlab.data import load_data
from transferlab.data.images import BadImage, load_rgb
from transferlab.errors import TransferlabError

pytestmark = pytest.mark.filterwarnings("ignore::transferlab.data.images.SkippedImagesWarning")
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fresh(root: Path) -> Path:
    folder = root / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


def _files_outside_cache(root: Path) -> set[Path]:
    cache = paths.home().resolve()
    return {p for p in root.resolve().rglob("*") if cache not in p.parents}


def _load_or_project_error(data: Path, **options) -> None:
    with contextlib.suppress(TransferlabError):  # a clear, user-facing error is fine; anything else fails
        load_data(data, **options)


@FUZZ
@given(blobs=st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=4), strict=st.booleans())
def test_random_bytes_as_images_give_project_errors_only(tmp_path, blobs, strict):
    root = _fresh(tmp_path)
    for c in ("a", "b"):
        for i, blob in enumerate(blobs):
            (root / c).mkdir(exist_ok=True)
            (root / c / f"{i}.png").write_bytes(blob)
        Image.new("RGB", (9, 9), (10, 200, 30)).save(root / c / "good.png")
    _load_or_project_error(root, strict=strict)


MODES = ("1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK", "YCbCr", "HSV")


@FUZZ
@given(mode=st.sampled_from(MODES), width=st.integers(1, 40), height=st.integers(1, 40),
       fmt=st.sampled_from(["PNG", "TIFF", "BMP", "JPEG", "WEBP", "GIF"]), seed=st.integers(0, 2**16))  # fmt: skip
def test_odd_modes_and_sizes_read_as_rgb_or_a_bad_image(tmp_path, mode, width, height, fmt, seed):
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    image = (
        Image.fromarray(pixels, "RGB").convert(mode)
        if mode not in ("I;16", "I", "F")
        else Image.new(mode, (width, height), seed % 200)
    )
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # this format cannot hold this mode: nothing to read
    path = _fresh(tmp_path) / f"x.{fmt.lower()}"
    path.write_bytes(buffer.getvalue())
    result = load_rgb(path)
    assert isinstance(result, BadImage) or (result.mode == "RGB" and result.size == (width, height))


HOSTILE = st.sampled_from(
    ["../evil.png", "../../evil.png", "/tmp/evil.png", "a/../../evil.png", "a/./../../b.png", "C:\\evil.png",
     "..\\evil.png", "a/b/../../../evil.png", "ok/../fine.png", "a//../../evil.png"]
)  # fmt: skip


@FUZZ
@given(names=st.lists(HOSTILE, min_size=1, max_size=3, unique=True), kind=st.sampled_from(["zip", "tar"]))
def test_archives_with_hostile_member_names_write_nothing_outside_the_cache(tmp_path, monkeypatch, names, kind):
    # the cache four folders below tmp_path: no relative name here climbs out of tmp_path, so
    # scanning it (not the whole session's temporary tree) sees every escape; absolute names are
    # checked where they point
    cache = tmp_path / "a" / "b" / "c" / "home"
    cache.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("TRANSFERLAB_HOME", str(cache))
    absolute = [Path(n) for n in names if Path(n).is_absolute() and not Path(n).exists()]
    root = _fresh(tmp_path)
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    archive = root / f"data.{kind}"
    members = [*names, "cat/1.png", "dog/1.png"]
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as handle:
            for name in members:
                handle.writestr(name, png.getvalue())
    else:
        with tarfile.open(archive, "w") as handle:
            for name in members:
                info = tarfile.TarInfo(name)
                info.size = len(png.getvalue())
                handle.addfile(info, io.BytesIO(png.getvalue()))
    before = _files_outside_cache(tmp_path)
    _load_or_project_error(archive)
    assert _files_outside_cache(tmp_path) == before and not any(p.exists() for p in absolute)


@FUZZ
@given(lines=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=8))
def test_malformed_csvs_give_project_errors_only(tmp_path, lines):
    root = _fresh(tmp_path)
    Image.new("RGB", (8, 8)).save(root / "img.png")
    csv = root / "labels.csv"
    csv.write_text("\n".join(["path,label", "img.png,cat", *lines]), encoding="utf-8")
    _load_or_project_error(csv)


def test_a_tar_symlink_out_of_the_archive_is_refused(tmp_path):
    archive = tmp_path / "data.tar"
    with tarfile.open(archive, "w") as handle:
        link = tarfile.TarInfo("cat/evil.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        handle.addfile(link)
    with pytest.raises(TransferlabError):
        load_data(archive)
