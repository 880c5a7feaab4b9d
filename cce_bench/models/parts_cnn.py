"""`model=parts_cnn`: the small CNN the suite trains on its part scenes (cce_bench/parts), for the world of the
run's `data=parts` (its seed, parts, types, side, distractors; the default world otherwise). Its weights come
from the cache (`cce-bench train-parts` puts them there; a missing one is trained first, saying so), or from
`model.checkpoint`. Before it is used, the reliance check runs on held-out scenes: a model whose logits do not
follow the parts is refused."""
from __future__ import annotations

import sys

from ..errors import UserError
from .classifier import Classifier
from .facts import ModelFacts, register_model
from .inputs import InputSettings

FACTS = ModelFacts(target_layer="features.3", perceptual_layers=("features.1", "features.2"), rise=(1000, 6, 0.5))


def parts_world(world=None):
    """The world of a `model.world` node: the run's data when it is `data=parts`, else the default world."""
    from ..data.parts import world_of
    from ..parts.scenes import PartsWorld

    if world is not None and world.get("name") == "parts":
        return world_of(world)
    return PartsWorld()


@register_model("parts_cnn", FACTS)
def parts_cnn(checkpoint=None, download=False, random_init=False, world=None, train_scenes: int = 8000,
              epochs: int = 4) -> Classifier:
    """The parts CNN of the run's world: cached, trained on first use, or `checkpoint`."""
    from ..parts.network import parts_cnn_network
    from ..parts.training import weights_path
    from .weights import load_into, load_state_dict

    scenes = parts_world(world)
    inputs = InputSettings(scenes.side, scenes.side, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    categories = [scenes.class_name(label) for label in range(len(scenes.classes))]
    if random_init:
        return Classifier("parts_cnn", parts_cnn_network(len(categories)), inputs, categories)
    if checkpoint:
        net = parts_cnn_network(len(categories))
        load_into(net, load_state_dict(checkpoint), "parts_cnn", str(checkpoint))
    else:
        net = cached_or_trained(scenes, weights_path(scenes), int(train_scenes), int(epochs))
    model = Classifier("parts_cnn", net, inputs, categories)
    model.reliance = checked_reliance(model, scenes)
    return model


def cached_or_trained(scenes, path, train_scenes: int, epochs: int):
    from ..parts.training import MIN_ACCURACY, load_trained, save_trained, train_parts_cnn

    if path.is_file():
        return load_trained(path, scenes)
    print(f"model parts_cnn: no trained weights for this world in {path.parent}: training them now (about 2 minutes "
          "on 2 CPU cores; `cce-bench train-parts` does it ahead of a run)", file=sys.stderr)
    net, report = train_parts_cnn(scenes, train_scenes, epochs)
    print(f"model parts_cnn: trained in {report['seconds']:.0f} s, held-out accuracy {report['accuracy']:.2%}",
          file=sys.stderr)
    if report["accuracy"] < MIN_ACCURACY:
        raise UserError(f"model parts_cnn reached {report['accuracy']:.2%} held-out accuracy (needs "
                        f"{MIN_ACCURACY:.0%}) on this world: pass model.epochs=8 to train longer")
    save_trained(net, report, path)
    return net


def checked_reliance(model: Classifier, scenes):
    """The reliance check on held-out scenes, printed; one line refusing a model that fails it."""
    from ..parts.training import reliance_check, scene_tensor

    reliance = reliance_check(lambda images: model(scene_tensor(images)), scenes)
    print(f"model parts_cnn: reliance check: {reliance.describe()}", file=sys.stderr)
    if not reliance.passes:
        raise UserError("model parts_cnn fails the reliance check (its logits do not follow the parts that define "
                        "its classes): retrain it (cce-bench train-parts) or pass another model.checkpoint")
    return reliance
