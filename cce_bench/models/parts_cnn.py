"""`model=parts_cnn`: the small CNN the suite trains on its part scenes (cce_bench/parts), for the world of the
run's `data=parts` (its seed, parts, types, side, distractors; the default world otherwise). Its weights come
from the cache (`cce-bench train-parts` puts them there; a missing one is trained first, saying so), or from
`model.checkpoint`. Its batch norms are folded into their convolutions (the same function in eval mode, about half
the time per gradient pass). Before it is used, the reliance check runs on held-out scenes: a model whose logits do
not follow the parts is refused."""
from __future__ import annotations

import sys

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
              epochs: int = 4, architecture: str = "parts_cnn") -> Classifier:
    """The network of `architecture` (the suite's CNN, or a torchvision_NAME / timm_NAME one) for the run's world:
    cached, trained on first use, or `checkpoint`."""
    from ..parts.network import OWN, folded_batch_norms, parts_network
    from ..parts.training import checked_reliance, load_trained, scene_tensor, weights_path
    from .weights import load_into, load_state_dict

    scenes = parts_world(world)
    architecture = str(architecture)
    inputs = InputSettings(scenes.side, scenes.side, "bilinear", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    categories = [scenes.class_name(label) for label in range(len(scenes.classes))]
    name = "parts_cnn" if architecture == OWN else f"parts_cnn_{architecture}"
    reliance = None
    if random_init:
        net = parts_network(architecture, len(categories))
    elif checkpoint:
        net = parts_network(architecture, len(categories))
        load_into(net, load_state_dict(checkpoint), "parts_cnn", str(checkpoint))
    elif weights_path(scenes, architecture).is_file():
        net = load_trained(weights_path(scenes, architecture), scenes, architecture)
    else:
        net, reliance = train_first(scenes, int(train_scenes), int(epochs), architecture)
    if architecture == OWN and not random_init:
        net = folded_batch_norms(net)
    if reliance is None and not random_init:  # loaded: checked here (one trained just now was checked then)
        checked_reliance(lambda images: net(scene_tensor(images)), scenes, architecture)
    classifier = Classifier(name, net, inputs, categories)
    if architecture != OWN:  # another network's layers: the CAM layer found by the rule, RISE's masks as the CNN's
        classifier.own_facts = ModelFacts(rise=FACTS.rise)
    return classifier


def train_first(scenes, train_scenes: int, epochs: int, architecture: str):
    """The network trained on first use, checked and kept in the cache, saying so."""
    from ..parts.training import save_trained, trained_and_checked, weights_path

    path = weights_path(scenes, architecture)
    print(f"model parts_cnn: no trained weights of {architecture} for this world in {path.parent}: training them "
          "now (the suite's CNN: about 2 minutes on 2 CPU cores; `cce-bench train-parts` does it ahead of a run)",
          file=sys.stderr)
    net, report, reliance = trained_and_checked(scenes, train_scenes, epochs, architecture=architecture)
    save_trained(net, report, path)
    return net, reliance
