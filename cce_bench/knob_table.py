"""docs/knobs.md: every numeric, choice and list knob of every command with its valid range, written from
the schema (cce_bench/schema.py) and the methods' declarations, so that the page cannot drift from the
checks. `python -m cce_bench.knob_table > docs/knobs.md` writes it; a test compares the two."""
from __future__ import annotations

from .schema import RULES, knob_rules


def knob_table() -> str:
    from .explainers import EXPLAINERS

    lines = ["# Every knob's range", "",
             "Checked on the composed config before any work (and before Hydra makes the run folder); a value",
             "outside its range is one line naming the key, the value and the range. Written from the code by",
             "`python -m cce_bench.knob_table > docs/knobs.md` (a test keeps the two equal).", "",
             "## Shared keys and each command's own", "", "| key | valid values |", "| --- | --- |"]
    lines += [f"| `{key}` | {rule.describe()} |" for key, rule in sorted(RULES.items())]
    lines += ["", "A cross-key check: `data.resize` (each side) must be at least `data.crop`.", "",
              "## Each method's knobs (`method_knobs.NAME.KNOB=`)", "", "| key | valid values |", "| --- | --- |"]
    for name in sorted(EXPLAINERS.names()):
        lines += [f"| `method_knobs.{name}.{knob}` | {rule.describe()} |" for knob, rule in knob_rules(name).items()]
    lines += ["", "The methods of captum and pytorch-grad-cam (`captum_NAME`, `gradcam_NAME`: `cce-bench methods`) take",
              "the library's own arguments, checked by name against its signatures; the library checks their values."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(knob_table(), end="")
