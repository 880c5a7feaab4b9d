"""docs/knobs.md: every numeric, choice and list knob of every command with its valid range, written from
the schema (cce_bench/schema.py) and the methods' and metrics' knobs classes (cce_bench/method_knobs,
cce_bench/metric_knobs), so that the page
cannot drift from the checks. `python -m cce_bench.knob_table > docs/knobs.md` writes it; a test compares
the two."""
from __future__ import annotations

from .method_knobs import knobs_of, method_names, shown
from .metric_knobs import metric_knobs_of, metric_names
from .schema import RULES


def knob_table() -> str:
    lines = ["# Every knob's range", "",
             "Checked on the composed config before any work (and before Hydra makes the run folder); a value",
             "outside its range is one line naming the key, the value and the range. Written from the code by",
             "`python -m cce_bench.knob_table > docs/knobs.md` (a test keeps the two equal).", "",
             "## Shared keys and each command's own", "", "| key | valid values |", "| --- | --- |"]
    lines += [f"| `{key}` | {rule.describe()} |" for key, rule in sorted(RULES.items())]
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
