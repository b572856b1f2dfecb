"""Own-image import: folders and zips of class folders, and every way a zip can be hostile."""

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnn_core.data import datasets, owndata, userdata
from cnn_core.data.dataset import DatasetError


def png_bytes(colour=(200, 30, 30), size=(40, 30), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else colour[0]).save(buf, format="PNG")
    return buf.getvalue()


def make_folder(root: Path, per_class: dict[str, int]) -> Path:
    for name, count in per_class.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            shade = (40 * i) % 256
            (root / name / f"{i}.png").write_bytes(png_bytes((shade, 100, 255 - shade)))
    return root


def make_zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return path


def test_folder_import_resizes_splits_and_reports(tmp_path):
    root = make_folder(tmp_path / "pets", {"cat": 10, "dog": 10})
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds, report = owndata.import_images(root, "pets", image_size=16, test_fraction=0.2)
    assert ds.class_names == ("cat", "dog")
    assert ds.x_train.shape[1:] == (16, 16, 3) and ds.x_train.dtype == np.uint8
    assert len(ds.y_train) + len(ds.y_test) == 20
    assert np.bincount(ds.y_test).tolist() == [2, 2]  # stratified
    assert report.class_counts == {"cat": 10, "dog": 10}
    skipped = dict(report.skipped)
    assert "not an image" in skipped[str(Path("cat/notes.txt"))]
    assert "broken.png" in skipped[str(Path("dog/broken.png"))]


def test_grayscale_import_has_one_channel(tmp_path):
    root = make_folder(tmp_path / "x", {"a": 3, "b": 3})
    ds, _ = owndata.import_images(root, "x", image_size=8, grayscale=True, test_fraction=0.34)
    assert ds.x_train.shape[1:] == (8, 8, 1)


def test_zip_with_a_wrapper_folder_imports_and_saves_for_training(tmp_path, lab_home):
    members = {
        f"photos/{c}/{i}.png": png_bytes((i * 20, 0, 0)) for c in ("a", "b") for i in range(4)
    }
    members["photos/readme.md"] = b"hello"
    zpath = make_zip(tmp_path / "photos.zip", members)
    ds, report = owndata.import_images(zpath, "My Photos", image_size=12, test_fraction=0.25)
    assert report.class_counts == {"a": 4, "b": 4}
    assert any("readme.md" in path for path, _ in report.skipped)
    key = userdata.save_user_dataset(ds, "My Photos")
    assert key == "user:my-photos" and key in datasets.list_datasets()
    again = datasets.load_dataset(key)
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    assert again.class_names == ("a", "b")


@pytest.mark.parametrize(
    "evil_name, message",
    [
        ("../escape.png", "climbs out"),
        ("/abs/escape.png", "absolute path"),
        ("a/../../x.png", "climbs out"),
    ],
)
def test_zip_path_traversal_is_refused_and_nothing_is_written_outside(tmp_path, evil_name, message):
    zpath = make_zip(tmp_path / "evil.zip", {"a/1.png": png_bytes(), evil_name: png_bytes()})
    with pytest.raises(DatasetError, match=message):
        owndata.import_images(zpath, "evil")
    assert not (tmp_path / "escape.png").exists() and not Path("/abs/escape.png").exists()


def test_zip_symlink_is_refused(tmp_path):
    zpath = make_zip(tmp_path / "link.zip", {"a/1.png": png_bytes()}, symlink="b/passwd.png")
    with pytest.raises(DatasetError, match="symbolic link"):
        owndata.import_images(zpath, "link")


def test_zip_bomb_is_refused(tmp_path):
    zpath = make_zip(
        tmp_path / "bomb.zip", {"a/1.png": png_bytes(), "b/big.png": b"\0" * (20 << 20)}
    )
    assert zpath.stat().st_size < 100_000
    with pytest.raises(DatasetError, match="zip bomb"):
        owndata.import_images(zpath, "bomb")


def test_zip_lying_about_its_sizes_is_stopped_by_the_bytes_written(tmp_path, monkeypatch):
    monkeypatch.setattr(owndata, "MAX_TOTAL_BYTES", 3_000)
    monkeypatch.setattr(owndata, "MAX_RATIO", 10**9)
    members = {f"{c}/{i}.png": png_bytes(size=(60, 60)) for c in "ab" for i in range(20)}
    zpath = make_zip(tmp_path / "many.zip", members)
    with pytest.raises(DatasetError, match="MB"):
        owndata.import_images(zpath, "many")


def test_too_many_files_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(owndata, "MAX_FILES", 50)
    members = {f"{c}/{i}.png": b"x" for c in "ab" for i in range(30)}
    with pytest.raises(DatasetError, match="over the 50 limit"):
        owndata.import_images(make_zip(tmp_path / "many.zip", members), "many")


def test_nested_archives_are_skipped_with_a_reason(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", {"c/1.png": png_bytes()}).read_bytes()
    members = {f"{c}/{i}.png": png_bytes() for c in "ab" for i in range(2)}
    members["a/more.zip"] = inner
    _, report = owndata.import_images(make_zip(tmp_path / "n.zip", members), "n", test_fraction=0.5)
    assert any("nested" in reason for path, reason in report.skipped if path == "a/more.zip")


def test_one_class_only_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="at least two classes"):
        owndata.import_images(make_folder(tmp_path / "one", {"only": 3}), "one")


def test_an_empty_class_is_a_clear_error(tmp_path):
    root = make_folder(tmp_path / "e", {"a": 3, "b": 3})
    (root / "empty").mkdir()
    with pytest.raises(DatasetError, match="'empty' has no readable image"):
        owndata.import_images(root, "e")


def test_not_a_zip_is_a_clear_error(tmp_path):
    path = tmp_path / "fake.zip"
    path.write_bytes(b"plain text")
    with pytest.raises(DatasetError, match="not a readable zip"):
        owndata.import_images(path, "fake")


@pytest.mark.parametrize("bad", [4, 500])
def test_image_size_out_of_range_is_refused(tmp_path, bad):
    with pytest.raises(DatasetError, match="8 to 128"):
        owndata.import_images(make_folder(tmp_path / "s", {"a": 2, "b": 2}), "s", image_size=bad)


def test_unnameable_dataset_is_refused(tmp_path, lab_home):
    ds, _ = owndata.import_images(
        make_folder(tmp_path / "s", {"a": 2, "b": 2}), "s", test_fraction=0.5
    )
    with pytest.raises(DatasetError, match="cannot name"):
        userdata.save_user_dataset(ds, "../..")
