"""The part scenes (data=parts), the CNN the suite trains on them, and the metrics scored against what the
model really does there: checked by value on the generator's own ground truth."""
import hashlib
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from cce_bench.data import create_dataset, image_batches
from cce_bench.metrics import MapsToScore, create_metric
from cce_bench.metrics.distractibility import off_object_share
from cce_bench.parts.scenes import GENERATOR_VERSION, PartsWorld
from helpers import run_cli

TINY = {"name": "parts", "scene_seed": 0, "split": "test", "parts": 2, "types": 2, "side": 48, "distractors": 2,
        "n_images": 4, "resize": None, "crop": None, "interpolation": None}


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_scenes():
    world = PartsWorld()
    first = world.render(world.scene("test", 0)).image
    assert np.array_equal(first, PartsWorld().render(PartsWorld().scene("test", 0)).image)
    # the bytes of this version of the generator, on any machine (a change of them bumps GENERATOR_VERSION)
    assert GENERATOR_VERSION == 1
    assert hashlib.sha256(first.tobytes()).hexdigest() == (
        "8c5b476afcc76cce26e5b90b92a44c50825b3f7c59f6ad5672679efaf43a11a4")
    assert not np.array_equal(first, PartsWorld(seed=1).render(PartsWorld(seed=1).scene("test", 0)).image)
    assert not np.array_equal(first, world.render(world.scene("train", 0)).image)  # held-out scenes are others


def test_a_part_mask_is_exactly_the_pixels_its_removal_changes_and_swaps_stay_inside_the_two_parts():
    world = PartsWorld()
    for index in range(12):
        scene = world.scene("test", index)
        whole = world.render(scene)
        assert len(whole.part_masks) == 5 and scene.label == index % 32
        for slot, mask in whole.part_masks.items():
            changed = (world.render(scene, removed=(slot,)).image != whole.image).any(-1)
            assert np.array_equal(changed, mask), (index, slot)
            swapped = world.render(scene, swapped={slot: 2})
            moved = (swapped.image != whole.image).any(-1)
            assert moved.any() and not (moved & ~(mask | swapped.part_masks[slot])).any()
        for number, mask in whole.distractor_masks.items():
            changed = (world.render(scene, removed_distractors=(number,)).image != whole.image).any(-1)
            assert np.array_equal(changed, mask)
            assert not (mask & whole.body_mask).any() and not any((mask & m).any() for m in whole.part_masks.values())


def test_every_class_has_a_neighbour_in_each_slot_that_differs_there_alone():
    world = PartsWorld()
    assert len(world.classes) == 32 and len(set(world.class_name(c) for c in range(32))) == 32
    for label, code in enumerate(world.classes):
        for slot in range(world.parts):
            other = world.classes[world.neighbour(label, slot)]
            assert [a != b for a, b in zip(code, other)] == [s == slot for s in range(world.parts)]


def test_the_data_source_gives_each_scene_with_its_parts_as_the_boxes():
    from cce_bench.models.inputs import InputSettings

    inputs = InputSettings(48, 48, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    dataset = create_dataset(TINY, inputs)
    batch = next(iter(image_batches(dataset, 4)))
    world = PartsWorld(parts=2, types=2, side=48, distractors=2)
    assert batch["label"].tolist() == [0, 1, 2, 3] and batch["image"].shape == (4, 3, 48, 48)
    drawn = world.render(world.scene("test", 1))
    parts = torch.from_numpy(np.logical_or(*drawn.part_masks.values()))
    assert torch.equal(batch["mask"][1], parts)
    expected = (torch.from_numpy(drawn.image).permute(2, 0, 1).float() / 255 - 0.5) / 0.5
    assert torch.allclose(batch["image"][1], expected, atol=1e-6)


def test_exported_scenes_read_back_as_the_scenes_drawn_with_pycocotools_masks_and_folders_in_class_order(tmp_path):
    from PIL import Image
    from pycocotools.coco import COCO

    from cce_bench.parts.export import export_scenes

    world = PartsWorld(parts=3, types=2, side=48, distractors=2)
    written = export_scenes(world, "test", 9, tmp_path, progress=False)
    coco = COCO(str(tmp_path / "annotations.json"))
    folders = sorted(p.name for p in (tmp_path / "images").iterdir())
    assert folders == [f"{label:03d}-{world.class_name(label)}" for label in range(8)]  # scenes 0..8: every class
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    for image_id in (1, 9):
        scene = world.scene("test", image_id - 1)
        drawn = world.render(scene)
        info = coco.imgs[image_id]
        assert info["file_name"].startswith(f"{scene.label:03d}-")
        read = np.asarray(Image.open(tmp_path / "images" / info["file_name"]))
        assert np.array_equal(read, drawn.image)  # PNG: the scene's bytes
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        by_name = {names[a["category_id"]]: a for a in anns if names[a["category_id"]] != "distractor"}
        assert set(by_name) == {world.class_name(scene.label), "part:head", "part:right_wing", "part:right_foot"}
        for slot, name in enumerate(("part:head", "part:right_wing", "part:right_foot")):
            assert np.array_equal(coco.annToMask(by_name[name]).astype(bool), drawn.part_masks[slot])
        whole = coco.annToMask(by_name[world.class_name(scene.label)]).astype(bool)
        assert np.array_equal(whole, np.logical_or.reduce(list(drawn.part_masks.values())))
        rows, cols = np.nonzero(whole)
        assert by_name[world.class_name(scene.label)]["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1,
                                                                  rows.max() - rows.min() + 1]
        distractors = [coco.annToMask(a).astype(bool) for a in anns if names[a["category_id"]] == "distractor"]
        assert len(distractors) == len(drawn.distractor_masks)
    assert written == {"scenes": 9, "classes": 8, "annotations": len(coco.anns)}


def test_a_scene_id_is_split_and_index_and_anything_else_is_one_line():
    from cce_bench.errors import UserError
    from cce_bench.parts.explain import scene_by_id

    world = PartsWorld(parts=2, types=2, side=48)
    assert scene_by_id(world, "parts:check_000007") == world.scene("check", 7)
    for bad in ("parts:test_", "parts:valid_000001", "parts:chelsea"):
        with pytest.raises(UserError, match="is not a part scene: explain takes parts:SPLIT_INDEX"):
            scene_by_id(world, bad)


def test_an_architecture_to_train_is_the_suites_cnn_a_torchvision_or_timm_name_or_one_line():
    from cce_bench.errors import UserError
    from cce_bench.parts.network import parts_network

    assert parts_network("torchvision_resnet18", 4).fc.out_features == 4
    assert parts_network("timm_resnet10t", 4).get_classifier().out_features == 4
    for bad in ("torchvision_resnet_nothing", "resnet18", "timm_"):
        with pytest.raises(UserError, match=f"model.architecture={bad} is not a network to train on the part scenes"):
            parts_network(bad, 4)


def scored(metric: str, maps: torch.Tensor, ids: list, model) -> list:
    cfg = OmegaConf.create({"data": TINY, "seed": 0})
    images = torch.zeros(len(ids), 3, 48, 48)
    targets = torch.tensor([int(i.rsplit("_", 1)[1]) % 4 for i in ids])
    given = MapsToScore(model, images, maps, targets, cfg, 0, ids=ids)
    return create_metric(metric, cfg).score(given).per_image[metric]


@pytest.fixture(scope="module")
def tiny_model():
    from cce_bench import create_model

    torch.manual_seed(0)
    return create_model("parts_cnn", random_init=True, world=TINY)


def test_distractibility_is_zero_on_the_object_the_area_share_when_flat_and_one_on_distractors(tiny_model):
    world = PartsWorld(parts=2, types=2, side=48, distractors=2)
    ids = ["test_000000", "test_000001", "test_000002"]
    drawn = [world.render(world.scene("test", i)) for i in range(3)]
    objects = [torch.from_numpy(np.logical_or.reduce([*d.part_masks.values(), d.body_mask])) for d in drawn]
    on_object = torch.stack(objects).float()
    flat = torch.ones(3, 48, 48)
    on_distractors = torch.stack([torch.from_numpy(np.logical_or.reduce(list(d.distractor_masks.values())))
                                  for d in drawn]).float()
    assert scored("distractibility", on_object, ids, tiny_model) == pytest.approx([0, 0, 0], abs=1e-6)
    shares = [1 - float(o.float().mean()) for o in objects]
    assert scored("distractibility", flat, ids, tiny_model) == pytest.approx(shares, abs=1e-6)
    assert scored("distractibility", on_distractors, ids, tiny_model) == pytest.approx([1, 1, 1], abs=1e-6)
    assert off_object_share(on_object, torch.stack(objects)).tolist() == pytest.approx([0, 0, 0], abs=1e-6)


def test_part_deletion_is_one_for_the_masses_of_the_logit_drops_and_minus_one_reversed(tiny_model):
    world = PartsWorld(parts=3, types=2, side=48, distractors=2)
    tiny = {**TINY, "parts": 3}
    torch.manual_seed(1)
    from cce_bench import create_model

    model = create_model("parts_cnn", random_init=True, world=tiny)
    cfg = OmegaConf.create({"data": tiny, "seed": 0})
    ids = [f"test_{i:06d}" for i in range(4)]
    targets = torch.tensor([i % 8 for i in range(4)])
    faithful, reversed_ = [], []
    for row in range(len(ids)):
        scene = world.scene("test", row)
        variants = [world.render(scene)] + [world.render(scene, removed=(p.slot,)) for p in scene.parts]
        x = torch.stack([(torch.from_numpy(v.image).permute(2, 0, 1).float() / 255 - 0.5) / 0.5 for v in variants])
        with torch.no_grad():
            z = model(x)[:, targets[row]]
        drops = (z[0] - z[1:]).numpy()  # computed here, independently of the metric
        ranks = drops.argsort().argsort() + 1.0  # 1..3, in the drops' order
        for out, weights in ((faithful, ranks), (reversed_, 4.0 - ranks)):
            out.append(sum(w * torch.from_numpy(variants[0].part_masks[p.slot]).float() / variants[0].part_masks[
                p.slot].sum() for w, p in zip(weights, scene.parts)))
    for maps, expected in ((faithful, 1.0), (reversed_, -1.0)):
        given = MapsToScore(model, torch.zeros(4, 3, 48, 48), torch.stack(maps), targets, cfg, 0, ids=ids)
        values = create_metric("part_deletion", cfg).score(given).per_image["part_deletion"]
        assert values == pytest.approx([expected] * 4), values


def test_a_trained_cnn_learns_the_parts_and_passes_the_reliance_check(tmp_path, monkeypatch):
    from cce_bench.parts.training import held_out_accuracy, reliance_check, scene_tensor, train_parts_cnn

    world = PartsWorld(parts=2, types=2, side=48, distractors=2)
    net, report = train_parts_cnn(world, scenes=640, epochs=4, progress=False)
    assert report["accuracy"] >= 0.95 and held_out_accuracy(net, world, 200) >= 0.95
    reliance = reliance_check(lambda images: net(scene_tensor(images)), world, count=40)
    assert reliance.part_rate >= 0.95 and reliance.passes, reliance.describe()
    # as model=parts_cnn loads it: batch norms folded into the convolutions, the same logits, the layers' names kept
    from cce_bench.parts.network import folded_batch_norms

    scenes = scene_tensor([world.render(world.scene("test", i)).image for i in range(8)])
    with torch.no_grad():
        plain, (conv, norm) = net(scenes), (net.features[3][0].weight.clone(), net.features[3][1])
        fold = folded_batch_norms(net)
        torch.testing.assert_close(fold(scenes), plain, rtol=1e-4, atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fold.modules())
    expected = conv * (norm.weight / (norm.running_var + norm.eps).sqrt()).view(-1, 1, 1, 1)
    torch.testing.assert_close(fold.get_submodule("features.3.0").weight, expected)


def test_part_metrics_refuse_other_data_and_bad_worlds_are_one_line(tmp_path):
    refused = run_cli("compare", "metrics=[part_deletion]", "methods=[gradcam_pp]", "experiment=smoke",
                      f"out={tmp_path / 'a'}")
    assert refused.returncode == 2 and "metric part_deletion scores maps against the parts of scenes" in \
        refused.stderr, refused.stderr
    too_many = run_cli("compare", "data=parts", "data.parts=9", f"out={tmp_path / 'b'}")
    assert too_many.returncode == 2 and "data.parts=9 is not valid: it must be a whole number >= 2 and <= 5" in \
        too_many.stderr, too_many.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_corrupt_or_stale_cache_is_one_line(tmp_path):
    from cce_bench.errors import UserError
    from cce_bench.parts.training import load_trained, save_trained

    world = PartsWorld(parts=2, types=2, side=48)
    path = tmp_path / "parts_cnn.pt"
    save_trained(torch.nn.Linear(1, 1), {"accuracy": 1.0}, path)
    meta = path.with_suffix(".json")
    meta.write_text(json.dumps({"generator_version": GENERATOR_VERSION - 1}))
    with pytest.raises(UserError, match="generator version 0, this is version 1: delete it"):
        load_trained(path, world)
    meta.write_text("{not json")
    with pytest.raises(UserError, match="has no readable report"):
        load_trained(path, world)
    meta.write_text(json.dumps({"generator_version": GENERATOR_VERSION}))
    with pytest.raises(UserError, match="does not fit model 'parts_cnn'"):
        load_trained(path, world)


def test_compare_on_part_scenes_trains_the_cnn_once_checks_it_and_scores_against_the_parts(tmp_path):
    import pandas as pd

    cache = tmp_path / "cache"
    args = ("compare", "data=parts", "data.parts=2", "data.side=48", "data.n_images=4", "model=parts_cnn",
            "model.train_scenes=640", "methods=[gradcam_pp,ig]", "experiment=smoke")
    first = run_cli(*args, f"out={tmp_path / 'one'}", env={"CCE_BENCH_CACHE": str(cache)})
    assert first.returncode == 0, first.stderr
    assert "no trained weights of parts_cnn for this world" in first.stderr
    assert "reliance check: removing a part" in first.stderr
    stored = list(cache.glob("parts/v1_seed0_parts2_types2_side48_distractors3/parts_cnn.*"))
    assert sorted(p.suffix for p in stored) == [".json", ".pt"]
    report = json.loads(next(p for p in stored if p.suffix == ".json").read_text())
    assert report["accuracy"] >= 0.95 and report["generator_version"] == GENERATOR_VERSION
    table = pd.read_csv(tmp_path / "one" / "table.csv")
    assert {"Part del", "Part del SE", "Distract", "Distract SE", "Proportion (%)", "Contrast slot", "Contrast ρ",
            "Target sens"} <= set(table)
    assert not any("(paper)" in column for column in table)  # the paper never saw these scenes
    assert table["Distract"].between(0, 1).all() and table["Part del"].between(-1, 1).all()
    assert table["Contrast slot"].between(0, 1).all() and table["Target sens"].between(0, 1).all()
    caption = (tmp_path / "one" / "table.md").read_text().split("\n\n")[0]
    assert "Knobs set away from the methods' defaults: IG steps=4. Ranked by" in caption  # experiment=smoke's
    again = run_cli(*args, f"out={tmp_path / 'two'}", env={"CCE_BENCH_CACHE": str(cache)})
    assert again.returncode == 0 and "no trained weights" not in again.stderr, again.stderr
    assert pd.read_csv(tmp_path / "two" / "table.csv").drop(columns=["s/img"]).equals(table.drop(columns=["s/img"]))
    swept = run_cli("sweep", "param=alpha", "param.values=[1.0,0.0]", *args[1:7], "experiment=smoke",
                    f"out={tmp_path / 'sweep'}", env={"CCE_BENCH_CACHE": str(cache)})
    assert swept.returncode == 0, swept.stderr
    sweep_table = pd.read_csv(tmp_path / "sweep" / "table.csv")
    assert list(sweep_table["alpha"]) == [1.0, 0.0] and not any("(paper)" in c for c in sweep_table)
    assert sweep_table["Part del"].between(-1, 1).all() and sweep_table["Distract"].between(0, 1).all()
    sweep_records = pd.read_csv(tmp_path / "sweep" / "records.csv")
    by_value = sweep_records.groupby("value")["distractibility"].mean()
    assert sweep_table["Distract"].tolist() == [round(by_value[v], 3) for v in (1.0, 0.0)]
    # the same scenes as files, read by COCO's loader for the model trained on them
    exported = run_cli("export-parts", *args[2:4], "data.n_images=4", f"out={tmp_path / 'files'}",
                       env={"CCE_BENCH_CACHE": str(cache)})
    assert exported.returncode == 0, exported.stderr
    command = exported.stdout.strip().split("score them as files with: cce-bench ")[1].split()
    assert command[0] == "compare" and any(word.startswith("'model.world=") for word in command)
    as_files = run_cli(*[word.strip("'") for word in command], "methods=[gradcam_pp]", "experiment=smoke",
                       "data.n_images=null", f"out={tmp_path / 'coco'}", env={"CCE_BENCH_CACHE": str(cache)})
    assert as_files.returncode == 0 and "no trained weights" not in as_files.stderr, as_files.stderr
    coco_records = pd.read_csv(tmp_path / "coco" / "records.csv")
    assert sorted(coco_records["target_name"]) == sorted(pd.read_csv(tmp_path / "one" / "samples.csv")["class"])
    assert coco_records["proportion"].between(0, 1).all()
    # one scene drawn by explain: its parts, each method's map of P and its answer to "why P rather than Q"
    world = next(word for word in command if word.startswith("'model.world=")).strip("'")
    drawn = run_cli("explain", "parts:test_000001", "model=parts_cnn", world, "methods=[gradcam_pp,cce]",
                    "experiment=smoke", "save_maps=true", f"out={tmp_path / 'figure'}",
                    env={"CCE_BENCH_CACHE": str(cache)})
    assert drawn.returncode == 0, drawn.stderr
    scenes = PartsWorld(parts=2, types=2, side=48)
    asked = json.loads((tmp_path / "figure" / "explain.json").read_text())["questions"]
    assert [(q["method"], q["P"], q["Q"], q["slot"], q["contrast_answered"]) for q in asked] == [
        (method, scenes.class_name(1), scenes.class_name(scenes.neighbour(1, 1)), "right_wing", answers)
        for method, answers in (("gradcam_pp", False), ("cce", True))]
    saved = {path.stem for path in (tmp_path / "figure" / "maps").glob("*.npz")}
    assert saved == {"gradcam_pp", "cce", "cce_contrast", "cce_contrast_M_sup", "cce_contrast_M_pro"}
    assert (tmp_path / "figure" / "explain.png").stat().st_size > 10_000


class FixedMaps:
    """Stands in for a method in the metric's call: answers any question with the maps it was given."""

    def __init__(self, maps):
        self.given = maps

    @staticmethod
    def answers_contrast():
        return True

    def explain(self, images, target):
        from cce_bench.explainers.targets import Explanation

        return Explanation({"map": self.given, "second": 1 - self.given}, "map", {}, target.classes,
                           target.contrast_matrix())


def test_contrast_part_scores_the_slot_mask_one_and_a_flat_map_the_slots_area(tiny_model):
    from cce_bench.metrics.contrast_part import contrast_slot

    world = PartsWorld(parts=2, types=2, side=48, distractors=2)
    cfg = OmegaConf.create({"data": TINY, "seed": 0})
    ids = [f"test_{i:06d}" for i in range(4)]
    scenes = [world.scene("test", i) for i in range(4)]
    slots = torch.stack([torch.from_numpy(world.render(s).part_masks[contrast_slot(s)]).float() for s in scenes])
    targets = torch.tensor([s.label for s in scenes])
    for maps, expected in ((slots, [1.0] * 4), (torch.ones(4, 48, 48), [float(m.mean()) for m in slots])):
        given = MapsToScore(tiny_model, torch.zeros(4, 3, 48, 48), maps, targets, cfg, 0, ids=ids,
                            explainer=FixedMaps(maps))
        scored = create_metric("contrast_part", cfg).score(given).per_image
        assert scored["contrast_slot"] == pytest.approx(expected, abs=1e-6)
        assert scored["contrast_area"] == pytest.approx([float(m.mean()) for m in slots], abs=1e-6)
        assert "contrast_slot@second" in scored and len(scored["contrast_rho"]) == 4
        assert [world.classes[q] for q in scored["contrast_class"]] == [
            tuple(t ^ (k == contrast_slot(s)) for k, t in enumerate(world.classes[s.label])) for s in scenes]


class PartsOfTheClass:
    """Stands in for a method: its map for class t lies on the scene's parts that class t shares with the scene
    (the ideal answer), or, `reversed`, on the parts it does not share."""

    def __init__(self, world, scenes, reversed_=False):
        self.world, self.scenes, self.reversed = world, scenes, reversed_

    def raw_attribute(self, images, targets):
        maps = []
        for scene, target in zip(self.scenes, targets.tolist()):
            drawn = self.world.render(scene)
            code = self.world.classes[target]
            shared = [(code[p.slot] == p.kind) != self.reversed for p in scene.parts]
            masks = [torch.from_numpy(drawn.part_masks[p.slot]).float() for p in scene.parts]
            maps.append(sum(mask * on for mask, on in zip(masks, shared)))
        return torch.stack(maps)


def test_target_sensitivity_is_one_for_maps_on_the_shared_parts_and_zero_reversed_or_flat(tiny_model):
    cfg = OmegaConf.create({"data": {**TINY, "parts": 3}, "seed": 0})
    world = PartsWorld(parts=3, types=2, side=48, distractors=2)
    ids = [f"test_{i:06d}" for i in range(6)]
    scenes = [world.scene("test", i) for i in range(6)]
    targets = torch.tensor([s.label for s in scenes])
    for method, expected in ((PartsOfTheClass(world, scenes), 1.0), (PartsOfTheClass(world, scenes, True), 0.0)):
        given = MapsToScore(tiny_model, torch.zeros(6, 3, 48, 48), torch.zeros(6, 48, 48), targets, cfg, 0, ids=ids,
                            explainer=method)
        assert create_metric("target_sensitivity", cfg).score(given).per_image["target_sensitivity"] == [expected] * 6


@pytest.mark.slow
def test_train_parts_trains_a_timm_network_keyed_by_its_name_and_compare_scores_it(tmp_path):
    cache, world = tmp_path / "cache", ("data.parts=2", "data.side=48")
    trained = run_cli("train-parts", *world, "model.train_scenes=640", "model.epochs=8",
                      "model.architecture=timm_resnet10t", f"out={tmp_path / 'train'}",
                      env={"CCE_BENCH_CACHE": str(cache)})
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.strip().endswith("use them with: cce-bench compare data=parts model=parts_cnn "
                                           "model.architecture=timm_resnet10t data.parts=2 data.side=48")
    report = json.loads((tmp_path / "train" / "training.json").read_text())
    assert report["architecture"] == "timm_resnet10t" and report["accuracy"] >= 0.98 and report["reliance"]["passes"]
    assert [p.name for p in (cache / "parts" / "v1_seed0_parts2_types2_side48_distractors3").glob("*.pt")] == [
        "timm_resnet10t.pt"]
    scored = run_cli("compare", "data=parts", *world, "data.n_images=2", "model=parts_cnn",
                     "model.architecture=timm_resnet10t", "methods=[gradcam_pp]", "metrics=[part_deletion]",
                     "experiment=smoke", f"out={tmp_path / 'compare'}", env={"CCE_BENCH_CACHE": str(cache)})
    assert scored.returncode == 0 and "no trained" not in scored.stderr, scored.stderr
    config = (tmp_path / "compare" / "config.yaml").read_text()
    assert "target_layer: layer4.0" in config  # found by the rule in the timm network, not the suite CNN's
    assert "parts_cnn timm_resnet10t (fp32)" in (tmp_path / "compare" / "table.md").read_text()


def test_train_parts_keeps_the_cnn_where_parts_cnn_finds_it_and_says_how_to_use_it(tmp_path):
    cache = tmp_path / "cache"
    result = run_cli("train-parts", "data.parts=2", "data.side=48", "model.train_scenes=640", f"out={tmp_path / 'run'}",
                     env={"CCE_BENCH_CACHE": str(cache)})
    assert result.returncode == 0, result.stderr
    assert "reliance check: removing a part lowers the class's logit" in result.stderr
    assert result.stdout.strip().endswith("use them with: cce-bench compare data=parts model=parts_cnn data.parts=2 "
                                          "data.side=48")
    report = json.loads((tmp_path / "run" / "training.json").read_text())
    assert report["accuracy"] >= 0.98 and report["reliance"]["passes"] and report["train_scenes"] == 640
    assert (cache / "parts" / "v1_seed0_parts2_types2_side48_distractors3" / "parts_cnn.pt").is_file()
