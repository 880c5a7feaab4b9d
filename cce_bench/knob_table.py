"""docs/knobs.md: every knob of every command with its default, valid range and doc, written from the classes
that declare them (cce_bench/settings, cce_bench/method_knobs, cce_bench/metric_knobs), so that the page
cannot drift from the checks. `python -m cce_bench.knob_table > docs/knobs.md` writes it; a test compares
the two."""
from __future__ import annotations

import dataclasses

from .knobs import Knobs
from .method_knobs import knobs_of, method_names, shown
from .metric_knobs import metric_knobs_of, metric_names
from .settings import own_fields, settings_classes
from .settings.data import DataSettings


def nested_rows(settings, rules: dict, prefix: str = "") -> list[str]:
    """The rows of the nodes a settings class holds (compare.reference, paper.insertion_deletion.table)."""
    rows = []
    for field in dataclasses.fields(settings) if prefix else own_fields(type(settings)):
        child = getattr(settings, field.name)
        if field.name in rules or not isinstance(child, Knobs):
            continue
        for knob, rule in type(child).rules().items():
            doc = type(child).docs()[knob].replace("|", "\\|")
            default = shown(getattr(child, knob))
            rows.append(f"| `{prefix}{field.name}.{knob}` | `{default}` | {rule.describe()} | {doc} |")
        rows += nested_rows(child, {}, f"{prefix}{field.name}.")
    return rows


def settings_section() -> list[str]:
    """One table per settings class: the keys it declares beyond its parent's, with their default, range and doc."""
    lines = []
    for where, cls in settings_classes().items():
        fields = dataclasses.fields(cls) if cls is DataSettings else own_fields(cls)
        prefix = "" if where.startswith(("every", "cce-bench")) else f"{cls.group}."
        rules, defaults = cls.rules(), cls.defaults()
        rows = []
        for field in fields:
            if field.name not in rules:
                continue  # a config group (model, data, ...) or a node of its own, listed by its class
            doc = field.metadata.get("doc", "").replace("|", "\\|")
            default, valid = shown(defaults[field.name]), rules[field.name].describe()
            rows.append(f"| `{prefix}{field.name}` | `{default}` | {valid} | {doc} |")
        rows += nested_rows(cls(), rules)
        if rows:
            lines += [f"### {where}", "", (cls.__doc__ or "").split("\n\n")[0].replace("\n    ", " "), "",
                      "| key | default | valid values | what it sets |", "| --- | --- | --- | --- |", *rows, ""]
    return lines


def knob_table() -> str:
    lines = ["# Every knob's range", "",
             "Checked on the composed config before any work (and before Hydra makes the run folder); a value",
             "outside its range is one line naming the key, the value and the range. Written from the code by",
             "`python -m cce_bench.knob_table > docs/knobs.md` (a test keeps the two equal).", "",
             "## Shared keys, each command's own, the data sources' and the models'", "",
             "Declared in `cce_bench/settings/` (run.py, commands.py, data.py, model.py).", ""]
    lines += settings_section()
    lines += ["", "`data.resize`, `data.crop` and `data.interpolation` left null are the model's own input settings "
              "(docs/models.md);", "a cross-key check: `data.resize` (each side) must be at least `data.crop`.", "",
              "## Each method's knobs (`method_knobs.NAME.KNOB=`)", "",
              "Declared in `cce_bench/method_knobs/NAME.py`.", "",
              "| key | default | valid values | what it sets |", "| --- | --- | --- | --- |"]
    for name in method_names():
        knobs = knobs_of(name)
        rules, defaults = knobs.rules(), knobs.defaults()
        for knob, doc in knobs.docs().items():
            valid = rules[knob].describe() if knob in rules else "any (not checked)"
            what = doc.replace("|", "\\|")
            lines.append(f"| `method_knobs.{name}.{knob}` | `{shown(defaults[knob])}` | {valid} | {what} |")
    lines += [
        "",
        "The methods of captum and pytorch-grad-cam (`captum_NAME`, `pytorch_grad_cam_NAME`: `cce-bench methods`) take",
        "the library's own arguments, checked by name against its signatures; the library checks their values. A",
        "method of your own (`methods=[custom]`, or an installed package's) takes its callable's arguments.",
        "",
        "## Each metric's knobs (`metric_knobs.NAME.KNOB=`)",
        "",
        "Declared in `cce_bench/metric_knobs/NAME.py`; a Quantus metric's (`quantus_NAME`) are its class's arguments.",
        "",
        "| key | default | valid values | what it sets |",
        "| --- | --- | --- | --- |",
    ]
    for name in metric_names():
        metric_knobs = metric_knobs_of(name)
        rules, defaults = metric_knobs.rules(), metric_knobs.defaults()
        for knob, doc in metric_knobs.docs().items():
            what = doc.replace("|", "\\|")
            lines.append(f"| `metric_knobs.{name}.{knob}` | `{shown(defaults[knob])}` | {rules[knob].describe()} | "
                         f"{what} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(knob_table(), end="")
