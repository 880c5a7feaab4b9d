"""The energy-based pointing game: the metric by hand, and `cce-bench pointing-game` end to end."""
import pandas as pd
import pytest
import torch

from cce_bench.data.coco import box_mask
from cce_bench.metrics import energy_pointing_game
from helpers import run_cli


def test_proportion_by_hand_on_a_non_square_map_with_two_boxes():
    saliency = torch.tensor([[0., 1., 2., 3., 4., 5.],
                             [0., 0., 0., 0., 0., 0.],
                             [0., 0., 0., 0., 0., 10.],
                             [0., 0., 0., 0., 0., 0.]])
    mask = box_mask([(1, 0, 2, 3), (4, 2, 2, 2)], width=6, height=4)
    # min-max: divide by 10; inside: (1 + 2) / 10 + 10 / 10 = 1.3; total: 25 / 10 = 2.5
    proportion = energy_pointing_game(saliency[None], mask[None])
    assert proportion.item() == pytest.approx(1.3 / 2.5)
    # swapping x and y would score another region
    swapped = box_mask([(0, 1, 3, 2), (2, 4, 2, 2)], width=6, height=4)
    assert energy_pointing_game(saliency[None], swapped[None]).item() != pytest.approx(1.3 / 2.5)


def test_constant_map_spreads_its_energy_evenly():
    mask = box_mask([(0, 0, 3, 2)], width=6, height=4)
    assert energy_pointing_game(torch.zeros(1, 4, 6), mask[None]).item() == pytest.approx(6 / 24)


FAST_METHODS = ["experiment=smoke", "method_knobs.scorecam.target_layer=blocks.6"]


@pytest.mark.slow
def test_pointing_game_writes_table5_with_all_ten_columns(tmp_path):
    out = tmp_path / "pg"
    result = run_cli("pointing-game", "data.n_images=2", *FAST_METHODS, f"out={out}")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "table.csv")
    assert list(table.columns[1:]) == ["GBP", "IG", "RISE", "GCAM+", "SCAM", "FullIG", "CE", "APPB", "CALM", "CCE"]
    rows = table.set_index(table.columns[0])
    assert rows.loc["Proportion (%)", "CALM"] == "needs checkpoint"
    assert float(rows.loc["Proportion (paper)", "CCE"]) == pytest.approx(61.1)
    measured = rows.loc["Proportion (%)"].drop("CALM").astype(float)
    assert ((measured >= 0) & (measured <= 100)).all()
    records = pd.read_csv(out / "records.csv")
    assert len(records) == 2 * 9 and set(records["image_id"]) <= {"2:cup", "3:bench", "3:bottle", "5:bench", "5:bottle"}
    for name in ("samples.csv", "skipped.csv", "machine.json", "config.yaml", "run.json", "table.md", "table5.png"):
        assert (out / name).is_file(), name
    assert "train-calm" in (out / "table.md").read_text()


def test_pointing_game_runs_a_subset_by_name(tmp_path):
    out = tmp_path / "pg"
    result = run_cli("pointing-game", "methods=[gradcam_pp,contrastive_gradcam]", "experiment=smoke", f"out={out}")
    assert result.returncode == 0, result.stderr
    assert list(pd.read_csv(out / "table.csv").columns[1:]) == ["GCAM+", "CE"]


@pytest.mark.slow
def test_train_calm_then_the_calm_column_is_measured(tmp_path):
    import numpy as np
    import torch
    import torchvision
    from PIL import Image

    torch_home = tmp_path / "torch"
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(),
               torch_home / "hub" / "checkpoints" / "resnet50-0676ba61.pth")
    rng = np.random.default_rng(0)
    for wnid in ("n02123045", "n07920052"):  # tabby, espresso
        folder = tmp_path / "imagenet" / "train" / wnid
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (80, 90, 3), dtype=np.uint8)).save(folder / f"{i}.JPEG")
    env = {"TORCH_HOME": str(torch_home)}
    checkpoint = tmp_path / "calm.pth"
    trained = run_cli("train-calm", f"data.root={tmp_path / 'imagenet'}", "data.resize=64", "data.crop=64",
                      "batch_size=2", "num_workers=0", f"checkpoint={checkpoint}", f"out={tmp_path / 'calm'}", env=env)
    assert trained.returncode == 0, trained.stderr
    assert checkpoint.is_file()
    out = tmp_path / "pg"
    result = run_cli(
        "pointing-game",
        "methods=[calm]",
        "experiment=smoke",
        f"method_knobs.calm.checkpoint={checkpoint}",
        f"out={out}",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    value = pd.read_csv(out / "table.csv").set_index("Unnamed: 0").loc["Proportion (%)", "CALM"]
    assert 0 <= float(value) <= 100
