"""Every torchvision and timm classifier by name: `torchvision_NAME` (torchvision.models.list_models) and
`timm_NAME` (timm.list_models), each with its own input settings (torchvision's weight transforms, timm's
pretrained_cfg) and weights from a local file, the local cache, or a download when allowed. The libraries
are imported only when a member is listed or built."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .classifier import Classifier, categories_for, check_logits
from .facts import MODELS, ModelFacts
from .inputs import InputSettings
from .weights import downloading, load_into, load_state_dict

FAMILIES = ("torchvision", "timm")


def torchvision_members() -> list[str]:
    """torchvision's image classification models (not its detection, segmentation, video or quantized ones)."""
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def timm_members() -> list[str]:
    import timm

    return list(timm.list_models())


def torchvision_weights_entry(member: str, weights: str):
    """torchvision's weights entry of `member` by its name (`DEFAULT`, `IMAGENET1K_V1`, ...)."""
    import torchvision

    entries = torchvision.models.get_model_weights(member)
    if str(weights) == "DEFAULT":
        return entries.DEFAULT
    names = [entry.name for entry in entries]
    if str(weights) not in names:
        raise UserError(f"model.weights={weights} is not a weights entry of torchvision's {member}: pass one of "
                        f"{', '.join(['DEFAULT', *names])}")
    return entries[str(weights)]


def torchvision_cached_file(entry) -> Path:
    """Where torchvision keeps a weights entry's file once downloaded ($TORCH_HOME/hub/checkpoints)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name


def make_torchvision(member: str):
    def build(checkpoint=None, download=False, random_init=False, weights="DEFAULT") -> Classifier:
        import torchvision

        entry = torchvision_weights_entry(member, weights)
        name = f"torchvision_{member}"
        if random_init or checkpoint:
            net = torchvision.models.get_model(member, weights=None)
            if checkpoint:
                load_into(net, load_state_dict(checkpoint), name, checkpoint)
        elif torchvision_cached_file(entry).is_file():
            # torchvision's own builder: it reads the cached file and sets what the weights need of the
            # architecture (Inception's transform_input, GoogLeNet's auxiliary heads)
            net = torchvision.models.get_model(member, weights=entry)
        elif download:
            cached = torchvision_cached_file(entry)
            net = downloading(lambda: torchvision.models.get_model(member, weights=entry), entry.url,
                              f"{name}'s weights", f"put {cached.name} ({entry.url}) into {cached.parent}/ on a "
                              "machine with network, or pass model.checkpoint=PATH")
        else:
            cached = torchvision_cached_file(entry)
            raise UserError(f"no weights for {name} ({entry}): put {cached.name} ({entry.url}) into {cached.parent}/, "
                            "pass model.checkpoint=PATH, or model.download=true on a machine with network")
        inputs = InputSettings.from_torchvision(entry)
        return Classifier(name, net, inputs, categories_for(check_logits(net.eval(), inputs.size, name)))

    build.facts = ModelFacts()  # type: ignore[attr-defined]  # what create_model reads of every builder
    return build


def timm_cached_file(pretrained_cfg) -> str | None:
    """The weights of a timm model in the local Hugging Face cache ($HF_HOME/hub), if they are there."""
    from huggingface_hub import try_to_load_from_cache

    repo = getattr(pretrained_cfg, "hf_hub_id", None) if not isinstance(pretrained_cfg, dict) else \
        pretrained_cfg.get("hf_hub_id")
    if not repo:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return found
    return None


def timm_config(net) -> dict:
    """A timm network's pretrained_cfg (input size, crop fraction, interpolation, mean, std, Hub id)."""
    return dict(getattr(net, "pretrained_cfg", None) or {})


def make_timm(member: str):
    def build(checkpoint=None, download=False, random_init=False) -> Classifier:
        import timm

        name = f"timm_{member}"
        if random_init or checkpoint:
            net = timm.create_model(member, pretrained=False)
            if checkpoint:
                load_into(net, load_state_dict(checkpoint), name, checkpoint)
        else:
            config = timm_config(timm.create_model(member, pretrained=False))
            cached = timm_cached_file(config)
            repo = config.get("hf_hub_id") or member
            if cached is None and not download:
                raise UserError(f"no weights for {name} in the Hugging Face cache: pass model.checkpoint=PATH (a state "
                                f"dict of timm's {member}), put {repo} into the cache "
                                f"(`hf download {repo}` on a machine with network), or model.download=true")
            if cached is not None:  # timm's own loader, with its key conversions
                net = timm.create_model(member, pretrained=True, pretrained_cfg_overlay={"file": cached})
            else:
                url = None if config.get("hf_hub_id") else config.get("url")  # a weights file outside the Hub
                net = downloading(lambda: timm.create_model(member, pretrained=True), url or "https://huggingface.co",
                                  f"{name}'s weights", f"put {repo} into the Hugging Face cache (`hf download {repo}` "
                                  "on a machine with network), or pass model.checkpoint=PATH")
        inputs = InputSettings.from_timm(timm_config(net))
        return Classifier(name, net, inputs, categories_for(check_logits(net.eval(), inputs.size, name)))

    build.facts = ModelFacts()  # type: ignore[attr-defined]  # what create_model reads of every builder
    return build


def weights_here(name: str) -> bool:
    """Whether a model's weights are on this machine (the `cce-bench models` listing marks them)."""
    if name.startswith("torchvision_"):
        try:
            return torchvision_cached_file(torchvision_weights_entry(name[len("torchvision_"):], "DEFAULT")).is_file()
        except (UserError, ValueError, KeyError):
            return False
    if name.startswith("timm_"):
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(name[len("timm_"):])
        return cfg is not None and timm_cached_file(cfg) is not None
    return False


MODELS.add_family("torchvision", torchvision_members, make_torchvision)
MODELS.add_family("timm", timm_members, make_timm)
