"""Models: real weights classify real photos; checkpoints and missing weights."""
import pytest
import torch

from cce_bench import UserError, create_model

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


def test_embedded_model_classifies_real_photos(lite0, photos):
    images, ids = photos
    assert ids == ["chelsea", "coffee"]
    with torch.no_grad():
        probs = lite0(images).softmax(1)
    top1 = probs.argmax(1).tolist()
    assert top1[0] in CAT_CLASSES
    assert top1[1] in COFFEE_CLASSES
    assert lite0.categories[top1[1]] == "espresso" and probs[1, top1[1]] > 0.5


def test_lite0_loads_from_a_checkpoint_in_timm_naming(lite0, photos, tmp_path):
    path = tmp_path / "lite0.pth"
    torch.save(lite0.net.state_dict(), path)
    again = create_model("efficientnet_lite0", checkpoint=str(path))
    images, _ = photos
    with torch.no_grad():
        torch.testing.assert_close(again(images), lite0(images))


def test_wrong_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(UserError, match="does not fit"):
        create_model("efficientnet_lite0", checkpoint=str(path))
    with pytest.raises(UserError, match="does not exist"):
        create_model("resnet50", checkpoint=str(tmp_path / "missing.pth"))


def test_torchvision_weights_missing_offline_say_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError, match=r"vgg19-dcbb9e9d\.pth.*model\.checkpoint=PATH"):
        create_model("vgg19")


def test_resnet50_loads_from_torchvision_cache(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    net = torchvision.models.resnet50(weights=None)
    torch.save(net.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth")
    model = create_model("resnet50")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net.eval()(x), atol=1e-4, rtol=1e-4)  # channels_last vs contiguous
    assert model.categories[281] == "tabby"


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(
        UserError, match=r"unknown model 'vgg' \(did you mean 'vgg19'\?\); known: custom, efficientnet_lite0, "
        r"efficientnet_lite1, efficientnet_lite2, parts_cnn, resnet50, vgg19, or torchvision_NAME, or timm_NAME "
        r"\(cce-bench models lists them\)"
    ):
        create_model("vgg")
