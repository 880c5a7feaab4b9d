"""`cce-bench score`: maps from disk (a folder of .npy, a .npz, a .pt) scored as the API scores the same
arrays; maps on the original image put through the image's own geometry; bad maps skipped or refused."""
import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cce_bench import insertion_deletion
from cce_bench.data import bundled_photo_path, create_dataset
from cce_bench.data.saved_maps import MapsOnImages, SavedMaps
from cce_bench.errors import UserError
from cce_bench.metrics import energy_pointing_game
from helpers import readme_code, readme_command, run_cli


def random_maps(ids, seed=0, size=224):
    rng = np.random.default_rng(seed)
    return {i: rng.random((size, size)).astype(np.float32) for i in ids}


def save(layout, maps: dict, tmp_path):
    if layout == "folder":
        folder = tmp_path / "maps"
        folder.mkdir()
        for key, value in maps.items():
            np.save(folder / f"{key}.npy", value)
        return folder
    if layout == "npz":
        np.savez(tmp_path / "maps.npz", **maps)
        return tmp_path / "maps.npz"
    torch.save({"ids": list(maps), "maps": torch.from_numpy(np.stack(list(maps.values())))}, tmp_path / "maps.pt")
    return tmp_path / "maps.pt"


def test_readme_score_command_on_another_tools_maps(tmp_path, lite0, photos):
    """The README's example as a user runs it: captum's maps written by its snippet, then its command."""
    import subprocess
    import sys

    (tmp_path / "my_maps.py").write_text(readme_code("# my_maps.py"))
    made = subprocess.run([sys.executable, "my_maps.py"], cwd=tmp_path, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    out = tmp_path / "run"
    result = run_cli(*readme_command("cce-bench score maps=my_maps "), f"out={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    images, ids = photos
    saved = torch.from_numpy(np.stack([np.load(tmp_path / "my_maps" / f"{i}.npy") for i in ids]))
    reference = insertion_deletion(lite0, images[:1], saved[:1])  # the protocol's defaults, as the command's
    records = pd.read_csv(out / "records.csv").set_index("image_id")
    assert list(records.index) == [ids[0]]  # data.n_images=1: the map of the second photo is left aside
    assert "1 map(s) in my_maps are for images outside this run's sample" in result.stderr
    assert records.loc[ids[0], "ins_auc"] == pytest.approx(float(reference.insertion_auc[0]), abs=1e-5)
    assert records.loc[ids[0], "del_auc"] == pytest.approx(float(reference.deletion_auc[0]), abs=1e-5)
    assert pd.read_csv(out / "table.csv").loc[0, "method"] == "my_maps"


@pytest.mark.parametrize("layout", ["folder", "npz", "pt"])
def test_each_layout_reads_back_the_saved_arrays_by_image_id(layout, tmp_path):
    maps = random_maps(["chelsea", "coffee"], size=32)
    saved = SavedMaps(str(save(layout, maps, tmp_path)))
    assert saved.ids == {"chelsea", "coffee"}
    for image_id, array in maps.items():
        np.testing.assert_array_equal(saved.load(image_id), array)


def test_an_imagenet_id_finds_its_map_with_or_without_the_extension(tmp_path):
    (tmp_path / "maps" / "n01440764").mkdir(parents=True)
    np.save(tmp_path / "maps" / "n01440764" / "ILSVRC2012_val_00000293.npy", np.ones((4, 4), np.float32))
    saved = SavedMaps(str(tmp_path / "maps"))
    assert saved.key("n01440764/ILSVRC2012_val_00000293.JPEG") == "n01440764/ILSVRC2012_val_00000293"
    assert saved.load("n01440764/ILSVRC2012_val_00000293.JPEG").shape == (4, 4)


def test_a_map_made_on_the_original_photo_is_cropped_as_the_photo_is(lite0):
    """The photo's own grey levels, saved at its size (451 x 300), must land on the model's input where
    the photo does: the map after `score`'s geometry correlates with the preprocessed image's grey levels."""
    dataset = create_dataset({"name": "photos", "n_images": 1}, lite0.inputs)
    grey = np.asarray(Image.open(bundled_photo_path("chelsea")).convert("L"), dtype=np.float32) / 255
    assert grey.shape == (300, 451)

    class OneMap:
        ids = {"chelsea"}
        path = "grey"

        def key(self, i):
            return i if i == "chelsea" else None

        def load(self, i):
            return grey

        def source(self, i):
            return "grey.npy"

    maps = MapsOnImages(dataset, OneMap(), {"resize": 256, "crop": 224})
    item = maps[0]
    image_grey = lite0.to_pixels(item["image"][None])[0].mean(0).numpy()
    aligned = np.corrcoef(item["map"].numpy().ravel(), image_grey.ravel())[0, 1]
    stretched = torch.nn.functional.interpolate(torch.from_numpy(grey)[None, None], size=(224, 224), mode="bilinear")[
        0, 0
    ]
    misaligned = np.corrcoef(stretched.numpy().ravel(), image_grey.ravel())[0, 1]
    assert aligned > 0.99 and misaligned < 0.9


def test_bad_maps_are_skipped_one_by_one_with_the_reason(tmp_path, lite0):
    dataset = create_dataset({"name": "photos", "n_images": 4}, lite0.inputs)
    folder = tmp_path / "maps"
    folder.mkdir()
    np.save(folder / "chelsea.npy", np.ones((224, 224), np.float32))
    bad = np.ones((224, 224), np.float32)
    bad[3, 4] = np.nan
    np.save(folder / "coffee.npy", bad)
    np.save(folder / "camera.npy", np.ones((3, 224, 224), np.float32))  # an RGB picture, not a map
    maps = MapsOnImages(dataset, SavedMaps(str(folder)), {"crop": 224})  # motorcycle has no map
    items = [maps[i] for i in range(4)]
    assert "error" not in items[0]
    assert "coffee.npy holds NaN or infinite values" in items[1]["error"]
    assert "camera.npy has shape (3, 224, 224)" in items[2]["error"]
    assert "no map for this image" in items[3]["error"]
    # a map for a photo outside the run's sample is left aside; one for no photo at all is a mistake
    np.save(folder / "rocket.npy", np.ones((224, 224), np.float32))
    all_ids = [s.id for s in create_dataset({"name": "photos"}, lite0.inputs).samples]
    assert MapsOnImages(dataset, SavedMaps(str(folder)), {"crop": 224}, all_ids=all_ids).unused == 1
    np.save(folder / "tiger.npy", np.ones((224, 224), np.float32))
    with pytest.raises(UserError, match=r"1 map\(s\) for no image of photos \(e.g. 'tiger'\)"):
        MapsOnImages(dataset, SavedMaps(str(folder)), {"crop": 224}, all_ids=all_ids)


def test_a_map_too_large_to_be_one_is_skipped_from_its_header_alone(tmp_path, lite0):
    """A zip-bomb member (a header saying 30000 x 30000, a few bytes of data) is one map to skip, read
    from its header only; the other maps of the file still count."""
    import zipfile

    dataset = create_dataset({"name": "photos", "n_images": 2}, lite0.inputs)
    with zipfile.ZipFile(tmp_path / "maps.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("chelsea.npy", "w") as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f4", "fortran_order": False, "shape": (30000, 30000)}
            )
            member.write(bytes(64))
        with archive.open("coffee.npy", "w") as member:
            np.save(member, np.ones((224, 224), np.float32))
    maps = MapsOnImages(dataset, SavedMaps(str(tmp_path / "maps.npz")), {"crop": 224})
    assert maps[0]["error"] == (f"{tmp_path / 'maps.npz'}[chelsea] has shape (30000, 30000) (900,000,000 values): "
                                "larger than any map (67,108,864 values at most)")
    assert "error" not in maps[1]


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("fifo", "is not a regular file"),
    (b"not a zip", "cannot be read as a .npz"),
    ([1, 2, 3], "holds a list"),
])
def test_a_broken_maps_file_is_one_line_naming_it(content, message, tmp_path):
    path = tmp_path / ("maps.pt" if isinstance(content, list) else "maps.npz")  # a FIFO named like a .npz too
    if content == "fifo":
        os.mkfifo(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, list):
        torch.save(content, path)
    with pytest.raises(UserError, match=message) as error:
        SavedMaps(str(path))
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_maps_that_fit_no_image_are_refused_naming_both_kinds_of_id(tmp_path, lite0):
    dataset = create_dataset({"name": "photos", "n_images": 1}, lite0.inputs)
    np.savez(tmp_path / "wrong.npz", **random_maps(["n01440764_1", "n01440764_2"], size=8))
    with pytest.raises(
        UserError, match="none of the 1 images of photos has a map in .*wrong.npz .*'chelsea'.*'n01440764_1'"
    ):
        MapsOnImages(dataset, SavedMaps(str(tmp_path / "wrong.npz")), {"crop": 224})


def test_score_on_data_with_boxes_adds_the_pointing_game(tmp_path, lite0):
    dataset = create_dataset({"name": "photos_coco"}, lite0.inputs)
    pairs = [dataset[i] for i in range(len(dataset))][:2]
    maps = random_maps([p["image_id"] for p in pairs], seed=1, size=56)
    path = tmp_path / "pairs.npz"
    np.savez(path, **maps)
    out = tmp_path / "run"
    result = run_cli("score", f"maps={path}", "data=photos_coco", "experiment=smoke", "data.n_images=null",
                     "name=random", f"out={out}")
    # the .npz holds maps for 2 of the pairs: the others are skipped with the reason
    assert result.returncode == 0, result.stderr
    records = pd.read_csv(out / "records.csv").set_index("image_id")
    assert sorted(records.index) == sorted(maps)
    for pair in pairs:
        expected = energy_pointing_game(torch.from_numpy(maps[pair["image_id"]])[None], pair["mask"][None])
        assert records.loc[pair["image_id"], "proportion"] == pytest.approx(float(expected), abs=1e-5)
    skipped = pd.read_csv(out / "skipped.csv", keep_default_na=False)
    assert (skipped["reason"].str.contains("no map for this image")).sum() == len(dataset) - 2
    assert (
        "Proportion (%)" in pd.read_csv(out / "table.csv")
        and pd.read_csv(out / "table.csv").loc[0, "method"] == "random"
    )


@pytest.mark.parametrize("metric", ["quantus_MaxSensitivity", "class_sensitivity", "sanity"])
def test_score_refuses_a_metric_that_explains_again_before_any_image(tmp_path, warm_cli, metric):
    """Maps from elsewhere have no method to ask again: one line before the first image, no folder left."""
    np.savez(tmp_path / "maps.npz", chelsea=np.random.default_rng(0).random((8, 8)))
    result = warm_cli.run("score", f"maps={tmp_path / 'maps.npz'}", "experiment=smoke", f"metrics=[{metric}]",
                          f"out={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr
    assert f"metric {metric} explains again, and maps from elsewhere have no method to ask" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
