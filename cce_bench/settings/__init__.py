"""The settings every command's config is made of, declared once as dataclasses (type, default, range as a
`Rule`, doc), as the methods' and metrics' knobs are: `run` (every command's), `commands` (each command's own
keys, the root of its config), `data` (each kind of data source) and `model` (a model's keys, a family's, a
model of your own). Hydra composes them as structured configs (a wrong type or unknown key is refused while
composing), the schema checks each value against its rule (cce_bench/schema.py), and docs/knobs.md lists them.
Torch-free."""
from __future__ import annotations

import dataclasses

from omegaconf import DictConfig, OmegaConf

from ..knobs import Knobs
from ..rules import Rule
from .commands import COMMAND_SETTINGS
from .data import DATA_KINDS
from .model import OPEN_MODELS

# ConfigStore groups of the schemas that config files name in their defaults lists.
COMMAND_GROUP, DATA_GROUP, MODEL_GROUP = "settings/command", "settings/data", "settings/model"


def register_settings() -> None:
    """Each command's, each data kind's and the model's settings classes in Hydra's ConfigStore, where the
    config files name them (`- /settings/data@_here_: coco`); a model of your own (`model=custom`) as an open
    choice of the model group (every key it does not declare is an argument of your callable)."""
    from hydra.core.config_store import ConfigStore

    from .model import ModelSettings, PartsModel

    store = ConfigStore.instance()
    for name, cls in COMMAND_SETTINGS.items():
        store.store(group=COMMAND_GROUP, name=name, node=cls)
    for name, cls in DATA_KINDS.items():
        store.store(group=DATA_GROUP, name=name, node=cls)
    store.store(group=MODEL_GROUP, name="named", node=ModelSettings)
    store.store(group=MODEL_GROUP, name="parts", node=PartsModel)
    for name, cls in OPEN_MODELS.items():
        node = OmegaConf.structured(cls)
        OmegaConf.set_struct(node, False)
        store.store(group="model", name=name, node=node)


def declared_rules(cfg, prefix: str = "") -> dict[str, Rule]:
    """Every rule the composed config's own classes declare, as KEY -> Rule: each node made from a settings or
    knobs class (the command's root, data, model, param, method_knobs.NAME, metric_knobs.NAME) gives its fields'."""
    rules: dict[str, Rule] = {}
    cls = OmegaConf.get_type(cfg)
    if isinstance(cls, type) and issubclass(cls, Knobs):
        rules.update({f"{prefix}{key}": rule for key, rule in cls.rules().items()})  # ??? too: not `in` cfg
    for key in cfg:
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing():
            rules.update(declared_rules(node, f"{prefix}{key}."))
    return rules


def settings_classes() -> dict[str, type[Knobs]]:
    """Every settings class by where its keys are set, for docs/knobs.md."""
    from .data import DataSettings
    from .model import FAMILIES, ModelSettings, PartsModel
    from .run import RunSettings

    classes: dict[str, type[Knobs]] = {"every command": RunSettings}
    classes.update({f"cce-bench {name.replace('_', '-')}": cls for name, cls in COMMAND_SETTINGS.items()})
    classes["data (every source)"] = DataSettings
    classes.update({f"data ({name})": cls for name, cls in DATA_KINDS.items()})
    classes["model"] = ModelSettings
    classes["model=parts_cnn"] = PartsModel
    classes.update({f"model={name}_NAME": cls for name, cls in FAMILIES.items()})
    classes.update({f"model={name}": cls for name, cls in OPEN_MODELS.items()})
    return classes


def own_fields(cls: type[Knobs]) -> list[dataclasses.Field]:
    """The fields a class declares beyond its parent's (a command's own keys, not the run's again)."""
    parent = next((base for base in cls.__mro__[1:] if dataclasses.is_dataclass(base)), None)
    inherited = {f.name: f for f in dataclasses.fields(parent)} if parent else {}
    return [f for f in dataclasses.fields(cls) if f.name not in inherited or inherited[f.name] is not f]
