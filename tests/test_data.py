"""Data sets: decoding, skipping, seeded sampling, the bundled photos, COCO pairs and box masks."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cce_bench import UserError
from cce_bench.data import Sample, create_dataset, load_rgb, seeded_sample
from cce_bench.data.coco import box_mask, coco_to_imagenet
from cce_bench.models import InputSettings, imagenet_categories
from helpers import noise, run_cli

# the classic ImageNet crop (Resize(256), CenterCrop(224)) with mean and std 0.5
HALF = InputSettings(mean=(0.5,) * 3, std=(0.5,) * 3)


def test_load_rgb_converts_grayscale_cmyk_16bit_and_rgba(tmp_path):
    noise(tmp_path / "gray.png", mode="L")
    noise(tmp_path / "cmyk.jpg", mode="CMYK")
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(tmp_path / "white16.png")
    Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(tmp_path / "grey16.png")
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red, fully transparent on the left half
    rgba[:, 2:, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    for name in ("gray.png", "cmyk.jpg", "white16.png", "rgba.png"):
        assert load_rgb(str(tmp_path / name)).mode == "RGB"
    assert np.asarray(load_rgb(str(tmp_path / "white16.png"))).min() == 255
    assert abs(int(np.asarray(load_rgb(str(tmp_path / "grey16.png")))[0, 0, 0]) - 128) <= 1  # scaled, not clipped
    pixels = np.asarray(load_rgb(str(tmp_path / "rgba.png")))
    assert tuple(pixels[0, 0]) == (255, 255, 255) and tuple(pixels[0, 3]) == (255, 0, 0)  # over white


def test_seeded_sample_depends_on_seed_only():
    samples = [Sample(f"c{i % 7}/img{i}.JPEG", f"/x/{i}", i % 7) for i in range(100)]
    first = seeded_sample(samples, 10, seed=3, what="x")
    assert first == seeded_sample(list(reversed(samples)), 10, seed=3, what="x")  # listing order does not matter
    assert [s.id for s in first] != [s.id for s in seeded_sample(samples, 10, seed=4, what="x")]
    assert len({s.id for s in first}) == 10


def test_photos_default_order_and_too_many(lite0):
    ds = create_dataset({"name": "photos", "n_images": 3}, lite0.inputs)
    assert [s.id for s in ds.samples] == ["chelsea", "coffee", "camera"]
    assert ds[2]["image"].shape == (3, 224, 224)  # the grayscale camera man becomes RGB
    with pytest.raises(UserError, match="n_images=99"):
        create_dataset({"name": "photos", "n_images": 99}, lite0.inputs)


# the smoke preset, curves of 24 points
FAST = ["experiment=smoke", "param.values=[1.0,0.5]", "metric_knobs.insertion_deletion.step=2240"]


def test_corrupt_and_truncated_images_are_skipped_and_recorded(image_tree, tmp_path):
    out = tmp_path / "run"
    result = run_cli("sweep", *FAST, "data=imagenet", f"data.root={image_tree}", "data.n_images=5", f"out={out}")
    assert result.returncode == 0, result.stderr
    skipped = pd.read_csv(out / "skipped.csv")
    assert sorted(skipped["image_id"]) == ["n07920052/garbage.JPEG", "n07920052/truncated.JPEG"]
    assert "warning: skipped n07920052/garbage.JPEG" in result.stderr
    records = pd.read_csv(out / "records.csv")
    assert set(records["image_id"]) == {"n02123045/a.JPEG", "n02123045/b.png", "n07920052/a.JPEG"}
    assert set(records["label"]) == {281, 967}  # wnid folders give the standard ImageNet indices


def test_box_mask_puts_x_on_columns_and_unites_boxes():
    mask = box_mask([(1, 0, 2, 3), (4, 2, 2, 2)], width=6, height=4)  # [x, y, w, h]
    expected = torch.tensor([[0, 1, 1, 0, 0, 0],
                             [0, 1, 1, 0, 0, 0],
                             [0, 1, 1, 0, 1, 1],
                             [0, 0, 0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_mapping_names_real_imagenet_classes():
    mapping = coco_to_imagenet()
    names = imagenet_categories()
    assert len(mapping) >= 16 and all(0 <= i < 1000 for classes in mapping.values() for i in classes)
    assert {names[i] for i in mapping["cat"]} == {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
    assert {names[i] for i in mapping["cup"]} == {"cup", "coffee mug"}
    assert names[mapping["airplane"][0]] == "airliner" and "Chihuahua" in {names[i] for i in mapping["dog"]}


@pytest.fixture
def coco_root(tmp_path):
    """A COCO-format folder made here: a 300x200 image, a mapped and an unmapped category, a crowd box,
    a box over half the image, and a box outside the image."""
    (tmp_path / "val2017").mkdir()
    (tmp_path / "annotations").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(tmp_path / "val2017" / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(tmp_path / "val2017" / "b.jpg")
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 300, "height": 200},
                   {"id": 2, "file_name": "b.jpg", "width": 300, "height": 200}],
        "categories": [{"id": 17, "name": "cat"}, {"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 17, "bbox": [100, 50, 60, 40], "area": 2400, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 17, "bbox": [200, 120, 30, 30], "area": 900, "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 17, "bbox": [0, 0, 300, 200], "area": 60000, "iscrowd": 1},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
            {"id": 5, "image_id": 2, "category_id": 17, "bbox": [0, 0, 250, 190], "area": 47500, "iscrowd": 0},
            {"id": 6, "image_id": 2, "category_id": 18, "bbox": [400, 300, 10, 10], "area": 100, "iscrowd": 0},
        ]}
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(doc))
    return tmp_path


def test_coco_pairs_are_mapped_filtered_and_masked(coco_root):
    data = create_dataset({"name": "coco", "root": str(coco_root), "n_images": None}, HALF)
    assert [s.id for s in data.samples] == ["1:cat"]  # person is unmapped; crowd boxes do not count
    reasons = {row["image_id"]: row["reason"] for row in data.skipped}
    assert "more than 0.5" in reasons["2:cat"] and "no box of positive area" in reasons["2:dog"]
    item = data[0]
    assert item["image"].shape == (3, 224, 224) and item["mask"].shape == (224, 224)
    assert item["allowed"].nonzero()[:, 0].tolist() == sorted(coco_to_imagenet()["cat"])
    # Resize(256): 300x200 -> 384x256 (x scale 1.28); CenterCrop(224): left 80, top 16.
    # box 1 [100, 50, 60, 40] -> columns 48..124.8, rows 48..99.2;
    # box 2 [200, 120, 30, 30] -> cols 176..214.4, rows 137.6..176
    mask = item["mask"]
    rows = mask.any(1).nonzero()[:, 0]
    cols = mask.any(0).nonzero()[:, 0]
    assert abs(rows.min().item() - 48) <= 1 and abs(rows.max().item() - 175) <= 1
    assert abs(cols.min().item() - 48) <= 1 and abs(cols.max().item() - 214) <= 1
    assert mask[70, 80] and mask[150, 190] and not mask[70, 190] and not mask[150, 80]  # a union, not a hull


def test_coco_errors_name_the_problem(coco_root, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        create_dataset({"name": "coco", "root": str(tmp_path / "nowhere")}, HALF)
    bad = coco_root / "annotations" / "instances_val2017.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not COCO instances JSON"):
        create_dataset({"name": "coco", "root": str(coco_root)}, HALF)
    bad.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    with pytest.raises(UserError, match="none of the categories the model's classes map to"):
        create_dataset({"name": "coco", "root": str(coco_root)}, HALF)


def test_embedded_default_reads_through_pycocotools():
    data = create_dataset({"name": "photos_coco"}, HALF)
    assert {s.category for s in data.samples} == {"cup", "bench", "bottle"}
    assert {row["image_id"] for row in data.skipped} == {"1:cat", "3:motorcycle", "3:bicycle", "5:motorcycle"}
    assert len(data.samples) == 5  # cup; bench and bottle in both motorcycle photos
    everything = create_dataset({"name": "photos_coco", "max_box_fraction": 1.0}, HALF)
    assert {"cat", "motorcycle"} <= {s.category for s in everything.samples}


def test_a_mixed_folder_is_read_whole_and_the_sample_is_drawn_from_images_that_open(tmp_path):
    import os

    from PIL import Image as PILImage

    from cce_bench.data import create_dataset

    root = tmp_path / "mixed"
    (root / "empty_subfolder").mkdir(parents=True)
    for name in ("a.jpg", "b.png"):
        PILImage.new("RGB", (40, 30), (200, 10, 10)).save(root / name)
    mixed = create_dataset({"name": "imagenet", "root": str(root), "n_images": None}, HALF)
    assert [s.id for s in mixed.samples] == ["a.jpg", "b.png"]  # images beside a folder are read

    bad = tmp_path / "bad"
    bad.mkdir()
    PILImage.new("RGB", (40, 30)).save(bad / "good.jpg")
    (bad / "text.jpg").write_text("not an image")
    os.symlink(bad / "missing.jpg", bad / "dangling.jpg")
    os.mkfifo(bad / "fifo.jpg")
    for seed in range(4):  # whichever order the seed draws them in, the one good image is the sample
        data = create_dataset({"name": "imagenet", "root": str(bad), "n_images": 1}, HALF, seed=seed)
        assert [s.id for s in data.samples] == ["good.jpg"]
        assert {row["image_id"] for row in data.skipped} <= {"text.jpg", "dangling.jpg", "fifo.jpg"}
    with pytest.raises(UserError, match="data.n_images=2 is larger than the 1 images in .* that can be opened"):
        create_dataset({"name": "imagenet", "root": str(bad), "n_images": 2}, HALF)
