"""The command's config as Hydra composes it, checked before anything runs or imports torch.

A config-group choice that does not exist gets the nearest and the known choices;
a key that does not exist gets its nearest keys; every knob is checked against the schema
(cce_bench/schema.py) and the method knobs (cce_bench/method_knobs), which are registered here as Hydra
structured configs.
"""
from __future__ import annotations

import copy
import difflib
import re
import sys

from .errors import UserError
from .resources import config_dir
from .settings import register_settings

GROUPS = ("model", "data", "param", "experiment")


def register_knob_nodes() -> None:
    """The configs `method_knobs: all` and `metric_knobs: all`: every method's and metric's knobs class
    (cce_bench/method_knobs, cce_bench/metric_knobs) under method_knobs.NAME and metric_knobs.NAME, as Hydra
    structured configs. A new method or metric is found by existing (Hydra has no glob in a defaults list).
    Each node is open, each class in it closed: `method_knobs.captum_DeepLift.eps=1e-9` (a library's, your own
    method's or a Quantus metric's arguments) is taken as typed, `method_knobs.cce.alpah=1` is refused. The
    settings classes (cce_bench/settings) are stored beside them, where the config files name them; a model of
    settings.model.OPEN_MODELS (`custom`) is an open node: `model.depth=18` is an argument of your callable."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from .method_knobs import structured_node
    from .metric_knobs import structured_node as metric_node

    if ConfigStore.instance().repo.get("method_knobs", {}).get("all.yaml") is not None:
        return
    register_settings()
    for group, classes in (("method_knobs", structured_node()), ("metric_knobs", metric_node())):
        node = OmegaConf.create(classes)
        OmegaConf.set_struct(node, False)  # a name the package does not declare: checked by the schema
        for name in classes:
            OmegaConf.set_struct(node[name], True)
        ConfigStore.instance().store(group=group, name="all", node=node)


def group_options(group: str) -> list[str]:
    """The choices of a config group: its files (configs/GROUP/NAME.yaml) and, for the model group, the open
    models stored in code (`custom`)."""
    from .settings.model import OPEN_MODELS

    files = [path.stem for path in sorted((config_dir() / group).glob("*.yaml"))]
    return sorted(files + (list(OPEN_MODELS) if group == "model" else []))


def check_group_choices(args: list[str]) -> None:
    """Each config-group choice on the command line exists (a near miss gets the nearest name, with the known
    ones); a model family's member (`model=torchvision_resnet18`) is registered as a choice first. The
    arguments are left as they are: Hydra composes what the user typed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for text in args:
        if text.startswith("-") or "=" not in text:
            continue  # Hydra's own flags (-m, --cfg job, ...) and their values
        try:
            (override,) = parser.parse_overrides([text])
        except OverrideParseException:
            continue  # Hydra reports its own parse errors
        group = override.key_or_group
        if group not in GROUPS or override.is_delete() or override.package:
            continue
        if override.is_sweep_override():
            choices = [str(c) for c in override.sweep_string_iterator()]
        else:
            choices = [override.get_value_element_as_str()]
        known = group_options(group) + (["null"] if group == "experiment" else [])  # an optional group: null is none
        for choice in choices:
            if choice in known or (group == "model" and register_family_member(choice)):
                continue
            close = difflib.get_close_matches(choice.lower(), known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            listed = ", ".join(name for name in known if name != "null")
            if group == "model":
                families = ", ".join(f"{f}_NAME" for f in model_families())
                raise UserError(f"unknown model {choice!r}{hint}; known: {listed}, and {families} "
                                "(cce-bench models lists them)")
            raise UserError(f"unknown {group} {choice!r}{hint}; known: {listed}")


def model_families() -> list[str]:
    """The model families (torchvision, timm): each is declared by its settings class (settings.model.FAMILIES)."""
    from .settings.model import FAMILIES

    return sorted(FAMILIES)


def register_family_member(choice: str) -> bool:
    """`model=torchvision_resnet18`, `model=timm_resnet18`: a member of a family, checked to exist (a near miss
    gets the nearest name), becomes a choice of the model group (the family's config with its name), as Hydra
    stores configs made in code. False for a choice of no family."""
    from hydra.core.config_store import ConfigStore

    family = next((f for f in model_families() if choice.startswith(f + "_")), None)
    if family is None:
        return False
    if ConfigStore.instance().repo.get("model", {}).get(f"{choice}.yaml") is None:
        from .models import MODELS

        MODELS.get(choice)  # imports the library; an unknown member: one line with the nearest name
        from .settings.model import FAMILIES

        ConfigStore.instance().store(group="model", name=choice, node=FAMILIES[family](name=choice))
    return True


def compose_checked(command: str, overrides: list[str], printing: bool = False, with_hydra: bool = False):
    """The command's config composed as Hydra composes it, with one line for a bad override (a key that
    does not exist gets the nearest keys) and every knob checked against the schema; every mandatory value
    set, unless the config is only `printing` (`--cfg job`, which shows the unset ones as ???). With
    `with_hydra`, the config keeps Hydra's own node (`hydra.run.dir`, ...) for the run to start from."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    register_knob_nodes()
    check_group_choices(overrides)

    def composed(items, hydra_node=False):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3", job_name=command):
            return compose(config_name=command.replace("-", "_"), overrides=items, return_hydra_config=hydra_node)

    try:
        cfg = composed(overrides, with_hydra)
    except HydraException as exc:
        raise composition_error(exc, command, overrides, composed) from None
    except (ValueError, TypeError) as exc:  # Hydra's own, for one value given to a node of keys (metric_knobs=1)
        raise node_given_a_value(exc, command, overrides, composed) from None
    check_composed(without_hydra(cfg) if with_hydra else cfg, printing)
    check_added_keys(overrides, without_hydra(cfg) if with_hydra else cfg)
    return cfg


def check_added_keys(overrides: list[str], cfg) -> None:
    """`+KEY=VALUE` adds a key Hydra would otherwise refuse: where KEY's node takes no new keys (a settings or knobs
    class; not a custom model's or method's, whose callables take their own arguments), a key it does not have is a
    typo the run would ignore, refused as one without the `+` is."""
    import dataclasses

    from omegaconf import DictConfig, OmegaConf

    from .schema import leaf_keys, suggest

    for override in overrides:
        key = override.lstrip("+").split("=", 1)[0]
        if not override.startswith("+") or "/" in key or key.startswith("hydra."):
            continue  # not an addition, or a config group (+hydra/launcher=...) or Hydra's own node
        parent_path, _, last = key.rpartition(".")
        parent = OmegaConf.select(cfg, parent_path) if parent_path else cfg
        declared = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
        if OmegaConf.is_struct(parent) and dataclasses.is_dataclass(declared) and \
                last not in {field.name for field in dataclasses.fields(declared)}:
            others = [k for k in leaf_keys(cfg) if k != key]
            raise UserError(f"unknown key '{key}'{suggest(key, others)}: a + adds a key, and nothing here reads this "
                            f"one; leave the + out for a key the config has")


def composition_error(exc: Exception, command: str, overrides: list[str], composed) -> UserError:
    """One line for a config Hydra could not compose: an unknown key with the nearest, a value of the wrong
    type with the key's rule, a key a config file sets that the command has not; `composed(overrides)` composes
    again without the bad override, to read the keys and rules there are."""
    from hydra.errors import HydraException

    from .schema import leaf_keys, suggest

    text = str(exc)
    first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    bad = re.search(r"Could not override '([^']+)'", text)
    if bad:
        key = bad.group(1)
        renamed = renamed_key(key)
        if renamed:
            return UserError(f"{key} {renamed}")
        rest = [o for o in overrides if not re.match(rf"^[+~]*{re.escape(key)}=", o)]
        try:
            hint = suggest(key, leaf_keys(composed(rest)))
        except HydraException:
            hint = ""
        return UserError(f"unknown key {key!r}{hint}: `cce-bench {command} --cfg job` prints every key")
    merging = re.match(r"Error merging override ([^=]+)=(.*)", first)
    if merging:  # a value of the wrong type for a typed knob (the knobs are structured configs)
        key = merging.group(1)
        rest = [o for o in overrides if not re.match(rf"^[+~]*{re.escape(key)}=", o)]
        try:
            rule = rule_of(key.lstrip("+~"), composed(rest))
        except HydraException:
            rule = None
        return UserError(wrong_type(key, merging.group(2), rule, exc))
    unknown = re.search(r"Key '[^']+' not in '[^']+'\s+full_key: (\S+)", text)
    if unknown and first.startswith("In '"):  # a config file (an experiment) sets a key this command has not
        where = first[len("In '"):].split("'")[0]
        return UserError(f"configs/{where}.yaml sets {unknown.group(1)}, which `cce-bench {command}` does not have: "
                         f"leave {where} out, or drop the key from it")
    unparsed = unparsable_override(overrides)
    if unparsed:
        key = unparsed.split("=", 1)[0]
        return UserError(f"{unparsed!r} cannot be read as KEY=VALUE: a value that holds quotes, '=', brackets or "
                         f"letters outside ASCII goes in quotes, as \"{key}='VALUE'\" (a quote inside it as \\')")
    hint = ": a list of values needs -m (one job per value)" if "Ambiguous value" in first else ""
    return UserError(f"bad override: {first}{hint}")


def unparsable_override(overrides: list[str]) -> str | None:
    """The first override Hydra's lexer cannot read (the lexer's own message names a token, not the key)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_override(override)
        except HydraException:
            return override
    return None


def node_given_a_value(exc: Exception, command: str, overrides: list[str], composed) -> UserError:
    """The override that gave one value to a node of keys (one that holds keys, or a top-level one that holds them
    once set, as method_knobs does), named with how to set its keys instead."""
    from omegaconf import DictConfig, OmegaConf

    defaults = composed([])
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        node = defaults.get(key, "absent") if "." not in key else OmegaConf.select(defaults, key, default="absent")
        if "=" in override and (isinstance(node, DictConfig) or ("." not in key and node is None)):
            return UserError(f"{override}: {key} holds keys, not one value: set them as {key}.KEY=VALUE "
                             f"(`cce-bench {command} --cfg job` prints them)")
    return UserError(f"{str(exc).splitlines()[0]}: check the overrides {' '.join(overrides)}")


def check_composed(cfg, printing: bool = False) -> None:
    """The one check of a composed config (by compose_checked, or by a multirun's job, which Hydra composes):
    every knob against its rule, every mandatory value set unless the config is only printed, a warning line
    for each legal but degenerate value."""
    from .schema import require, unset_keys, validate, warnings_for

    validate(cfg)
    if not printing:
        require(unset_keys(cfg))
    for message in warnings_for(cfg):
        print(f"cce-bench: warning: {message}", file=sys.stderr)


# Keys of earlier releases: the metrics' knobs are metric_knobs.NAME.KNOB, as the methods' are method_knobs.NAME.KNOB.
RENAMED_KEYS = {
    "metric.": "metric_knobs.insertion_deletion.",
    "sanity.fail_above": "metric_knobs.sanity.fail_above", "sanity.modes": "metric_knobs.sanity.modes",
    "sanity.layers": "metric_knobs.sanity.layers",
    "class_sensitivity.other": "metric_knobs.class_sensitivity.other",
    "class_sensitivity.similarity": "metric_knobs.class_sensitivity.similarity",
}
DROPPED_KEYS = ("sanity.enabled", "class_sensitivity.enabled")


def renamed_key(key: str) -> str | None:
    """What a key of an earlier release is now, as the rest of a line ('is now ...'), or None."""
    key = key.lstrip("+~")
    if key in DROPPED_KEYS:
        return ("is gone: name the metrics to score, e.g. metrics=[insertion_deletion,pointing_game] "
                "(`cce-bench metrics` lists them)")
    for old, new in RENAMED_KEYS.items():
        if key == old or (old.endswith(".") and key.startswith(old)):
            return f"is now {new + key[len(old):] if old.endswith('.') else new}"
    return None


def without_hydra(cfg):
    """The command's own config: a copy of a config composed with Hydra's node, without it."""
    from omegaconf import open_dict

    task = copy.deepcopy(cfg)
    with open_dict(task):
        del task["hydra"]
    return task


def rule_of(key: str, cfg):
    """The rule of a dotted key in a composed config: the one its node's class declares, or the one the suite
    adds to a library method's knobs; None for a key without a rule."""
    from .schema import library_knob_rules
    from .settings import declared_rules

    return declared_rules(cfg).get(key) or library_knob_rules(cfg).get(key)


def wrong_type(key: str, value: str, rule, exc: Exception) -> str:
    """One line for a value Hydra could not merge into a typed key: the key's rule where it has one, else
    the type the config expects."""
    import yaml

    from .method_knobs import shown

    try:
        value = shown(yaml.safe_load(value)) if not value.startswith(("[", "{")) else value
    except yaml.YAMLError:
        pass
    if rule is not None:
        return f"{key}={value} is not valid: it must be {rule.describe()}"
    cause = exc.__cause__ or exc
    return f"{key}={value} is not valid: {str(cause).splitlines()[0]}"


def hydra_flags_with_value() -> set[str]:
    """Hydra's flags that take the next argument as their value (`--cfg job`, `-cp DIR`), read from Hydra's own
    argument parser."""
    from hydra._internal.utils import get_args_parser

    return {flag for action in get_args_parser()._actions if action.option_strings and action.nargs != 0
            for flag in action.option_strings}


def hydra_quoted(text: str) -> str:
    """A path as a Hydra quoted string: in Hydra's grammar a backslash escapes only before a quote (or the
    closing quote), so only those runs of backslashes are doubled, then quotes escaped."""
    text = re.sub(r"(\\+)(?='|$)", lambda run: run.group(1) * 2, text)
    return "'" + text.replace("'", "\\'") + "'"


def positional_as_override(args: list[str], key: str) -> list[str]:
    """`explain a.jpg b.jpg key=value` -> `key=value inputs=['a.jpg','b.jpg']` (paths quoted for Hydra)."""
    images = [a for i, a in enumerate(args) if "=" not in a and not a.startswith("-")
              and not (i > 0 and args[i - 1] in hydra_flags_with_value())]
    rest = [a for a in args if a not in images]
    if not images:
        return rest
    quoted = ",".join(hydra_quoted(a) for a in images)
    return [*rest, f"{key}=[{quoted}]"]
