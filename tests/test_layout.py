"""The codebase's own rules: one name per method, methods found by existing, layers that do not reach
sideways, and the README's worked example of adding a method, run as a user would."""
import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from cce_bench.explainers import EXPLAINERS
from helpers import ROOT, guide_text

PACKAGE = ROOT / "cce_bench"


def test_every_method_has_one_name_for_module_knobs_and_class():
    from cce_bench.method_knobs import knobs_of, method_names

    assert method_names() == EXPLAINERS.names()  # the command line's list, read without importing the methods
    knob_files = {p.stem for p in (PACKAGE / "method_knobs").glob("*.py")} - {"__init__"}
    assert knob_files <= set(EXPLAINERS.names()), "a knobs file without its method"
    for name in EXPLAINERS.names():
        cls = EXPLAINERS.get(name)
        assert cls.name == name and (PACKAGE / "explainers" / f"{name}.py").is_file()
        assert cls.__name__.lower() == name.replace("_", "") and cls.__module__ == f"cce_bench.explainers.{name}"
        assert cls.label and cls.label != name  # the paper's abbreviation, for display
        assert cls.knobs_class is knobs_of(name)


def test_all_methods_come_from_the_registry_in_the_papers_column_order():
    from cce_bench.runs.runtime import all_methods
    from cce_bench.settings.commands import COMMAND_SETTINGS

    for command in ("pointing_game", "compare", "sanity"):  # no config lists the methods
        assert COMMAND_SETTINGS[command]().methods == "all"
        assert "methods" not in OmegaConf.load(ROOT / "configs" / f"{command}.yaml")
    paper = pd.read_csv(ROOT / "results" / "paper" / "table5_pointing_game.csv")
    assert all_methods() == list(paper["name"])  # the paper's ten, joined on the method's name
    assert [EXPLAINERS.get(n).label for n in paper["name"]] == list(paper["method"])  # the labels are the paper's


def test_each_knob_is_declared_once_and_every_reader_reads_that_declaration():
    import inspect

    from hydra.core.config_store import ConfigStore

    from cce_bench.composing import register_knob_nodes
    from cce_bench.knob_table import knob_table

    register_knob_nodes()
    composed = ConfigStore.instance().load("method_knobs/all.yaml").node
    page = knob_table()
    for name in EXPLAINERS.names():
        cls = EXPLAINERS.get(name)
        knobs = cls.knobs_class
        assert OmegaConf.to_container(composed[name]) == knobs.defaults()  # what the command line runs with
        parameters = list(inspect.signature(cls).parameters.values())
        assert [p.name for p in parameters] == ["model", *knobs.names()]  # help() and IDEs
        assert {p.name: p.default for p in parameters[1:]} == knobs.defaults()
        assert knobs.names()[-1] in ("batch_size", "std") and knobs.defaults()["batch_size"] is None
        assert set(knobs.names()) - set(knobs.rules()) <= {"mean", "std"}, f"{name}: give every knob a Rule"
        for knob, doc in knobs.docs().items():
            assert doc and f"    {knob}: {doc}" in cls.__doc__, f"{name}.{knob}: a line of doc, shown under Args"
            assert f"`method_knobs.{name}.{knob}`" in page or knob not in knobs.rules()
        built = cls.__new__(cls)
        Explainer_init = inspect.getmro(cls)[-2].__init__  # the base class's: every knob becomes an attribute
        Explainer_init(built, torch_free_model(), **{k: v for k, v in knobs.defaults().items() if k == "batch_size"})
        assert all(hasattr(built, k) for k in knobs.names())


def test_every_key_of_every_command_is_declared_once_with_its_rule_and_doc():
    """The shared keys, each command's own, the data sources' and the models': each a field of a settings class
    (type, default, Rule, doc) that Hydra composes, so the composed config knows every key's rule; no second
    list of rules beside them."""
    import dataclasses

    import cce_bench.schema
    from cce_bench.commands import COMMANDS
    from cce_bench.composing import compose_checked
    from cce_bench.knob_table import knob_table
    from cce_bench.schema import leaf_keys
    from cce_bench.settings import declared_rules, own_fields, settings_classes

    assert not hasattr(cce_bench.schema, "RULES")
    unruled = {"target", "contrast", "method_knobs", "metric_knobs"}  # a class name or index; absent groups (null)
    for command in [name for name, entry in COMMANDS.items() if entry.hydra]:
        has_model = command not in ("train-calm", "user-study-results", "export-parts")
        cfg = compose_checked(command, ["model=torchvision_resnet18"] if has_model else [], printing=True)
        rules = declared_rules(cfg)
        left = {key for key in leaf_keys(cfg) if key not in rules and not key.endswith((".mean", ".std"))}
        assert left <= unruled, f"{command}: keys without a rule: {sorted(left - unruled)}"
        assert "seed" in rules and (command == "user-study-results" or "data.n_images" in rules)
    page = knob_table()
    for where, cls in settings_classes().items():
        for field in dataclasses.fields(cls):
            assert field.metadata.get("doc"), f"{where}: {field.name} needs a line of doc"
        assert f"### {where}" in page or not [f for f in own_fields(cls) if f.name in cls.rules()]


def torch_free_model():
    import torch

    return torch.nn.Identity()


def test_the_package_imports_no_module_in_a_circle():
    """Each module's imports of the package's own modules, at the top or inside a function (one that runs
    later still ties the two modules together): a graph without cycles."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        here = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".") if path.name == "__init__.py" else here.split(".")[:-1]
                    parts = parts[:len(parts) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if (ROOT / Path(*full.split("."))).with_suffix(".py").exists()
                                or (ROOT / Path(*full.split(".")) / "__init__.py").exists() else base)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[here] = {t for t in targets if t.startswith("cce_bench") and t != here}

    edges = {m: {t for t in ts if t in graph} for m, ts in graph.items()}
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for target in edges[module]:
            if state.get(target) == "open":
                pytest.fail("import circle: " + " -> ".join([*trail[trail.index(target):], target]))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def imports_of(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = path.relative_to(ROOT).parent.parts[
                    : len(path.relative_to(ROOT).parent.parts) - node.level + 1
                ]
                base = ".".join([*package, *([base] if base else [])])
            yield base, [a.name for a in node.names]


def test_no_module_reaches_into_a_command_or_a_private_helper_of_another_module():
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        here = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for module, names in imports_of(path):
            if not module.startswith("cce_bench"):
                continue
            # the registry (cce_bench.commands) is read by the command line and report, and declares what a
            # plain command is; a command module is imported by nobody, not even another command
            if module.startswith("cce_bench.commands") and (
                module != "cce_bench.commands"
                or set(names) - {"COMMANDS", "COMMON_KEYS", "usage", "command_help", "PlainCommand"}
            ):
                pytest.fail(f"{here} imports {module} {names}")
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{here} imports private {private} from {module}"
        if here.startswith(("cce_bench.explainers", "cce_bench.metrics", "cce_bench.data")):
            text = path.read_text()
            assert "cce_bench.runs" not in text and "from ..runs" not in text, f"{here} reaches into the run machinery"


def test_every_output_folder_is_ignored_by_git():
    for folder in ("results/runs/x", "results/multiruns/x", "results/explain/x", "results/calm/x", "outputs/x"):
        ignored = subprocess.run(["git", "check-ignore", "-q", folder], cwd=ROOT)
        assert ignored.returncode == 0, f"{folder} is not ignored"


def readme_block(after: str, language: str) -> str:
    """The first fenced block of `language` after the line `after` in the documentation (README or docs/)."""
    text = guide_text()
    start = text.index(after)
    match = re.search(rf"```{language}\n(.*?)```", text[start:], re.S)
    return match.group(1)


def copy_with_readme_files(root, *paths):
    """The package and its configs copied to `root`, with exactly the files the README shows under `paths`."""
    shutil.copytree(PACKAGE, root / "cce_bench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "configs", root / "configs")
    shutil.copytree(ROOT / "results" / "paper", root / "results" / "paper")
    for path in paths:
        (root / path).write_text(readme_block(f"`{path}`:", "python" if path.endswith(".py") else "yaml"))
    return root


@pytest.fixture(scope="module")
def copy_with_a_new_method(tmp_path_factory):
    return copy_with_readme_files(tmp_path_factory.mktemp("copy"), "cce_bench/method_knobs/center_prior.py",
                                  "cce_bench/explainers/center_prior.py")


def run_copy(root, *args):
    return subprocess.run([sys.executable, "-m", "cce_bench.cli", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)}, timeout=600)


@pytest.mark.slow
def test_a_method_added_as_the_readme_shows_is_picked_up_by_every_command(copy_with_a_new_method):
    root = copy_with_a_new_method
    game = run_copy(root, "pointing-game", "methods=[center_prior,gbp]", "method_knobs.center_prior.sigma=0.3",
                    "experiment=smoke", f"out={root / 'pg'}")
    assert game.returncode == 0, game.stderr
    table = pd.read_csv(root / "pg" / "table.csv", index_col=0)
    assert list(table.columns) == ["Centre", "GBP"]
    proportion = float(table.loc["Proportion (%)", "Centre"])
    assert 0 < proportion < 100
    records = pd.read_csv(root / "pg" / "records.csv")
    assert set(records["method"]) == {"center_prior", "gbp"}
    assert "sigma: 0.3" in (root / "pg" / "config.yaml").read_text()

    sweep = run_copy(root, "sweep", "method=center_prior", "experiment=smoke", f"out={root / 'sweep'}")
    assert sweep.returncode == 0, sweep.stderr
    rows = pd.read_csv(root / "sweep" / "table.csv", keep_default_na=False)
    assert list(rows["alpha"]) == ["n/a"] and rows["images"].tolist() == [1]  # no alpha knob: scored once

    refused = run_copy(root, "sweep", "method=center_prior", "method_knobs.center_prior.sigma=0", "experiment=smoke")
    assert refused.returncode == 2 and "method_knobs.center_prior.sigma=0 is not valid: it must be a number > 0 " \
        "and <= 10" in refused.stderr, refused.stderr


def test_the_readme_method_computes_its_closed_form(copy_with_a_new_method):
    code = """
import torch
from cce_bench import create_explainer
from cce_bench.explainers import EXPLAINERS
maps = create_explainer("center_prior", torch.nn.Identity(), sigma=0.2).attribute(torch.zeros(2, 3, 5, 7), 0)
rows = torch.linspace(-0.5, 0.5, 5).view(-1, 1); cols = torch.linspace(-0.5, 0.5, 7).view(1, -1)
bump = torch.exp(-(rows ** 2 + cols ** 2) / (2 * 0.2 ** 2))
expected = (bump - bump.min()) / (bump.max() - bump.min())
assert torch.allclose(maps, expected.expand(2, 5, 7), atol=1e-6), maps
print(EXPLAINERS.get("center_prior").label)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=copy_with_a_new_method, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(copy_with_a_new_method)}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Centre"


@pytest.mark.slow
def test_a_metric_added_as_the_architecture_page_shows_is_scored_listed_and_checked(tmp_path):
    root = copy_with_readme_files(tmp_path, "cce_bench/metric_knobs/top_share.py", "cce_bench/metrics/top_share.py")
    code = """
import torch
from omegaconf import OmegaConf
from cce_bench.metrics import MapsToScore, create_metric
cfg = OmegaConf.create({"metric_knobs": {"top_share": {"fraction": 0.25}}})
maps = torch.ones(2, 4, 4)
maps[1] = 0
maps[1, 0, :2] = 1  # 2 of 16 pixels hold all the mass: their top quarter holds it all
scored = create_metric("top_share", cfg).score(MapsToScore(None, torch.zeros(2, 3, 4, 4), maps, None, cfg, 0))
print(scored.per_image["top_share"])
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(root)}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert [float(v) for v in result.stdout.strip(" []\n").split(",")] == pytest.approx([0.25, 1.0])

    compare = run_copy(root, "compare", "experiment=smoke", "data=photos", "methods=[gbp,gradcam_pp]",
                       "metrics=[insertion_deletion,top_share]", "metric_knobs.top_share.fraction=0.05",
                       f"out={root / 'compare'}")
    assert compare.returncode == 0, compare.stderr
    table = pd.read_csv(root / "compare" / "table.csv")
    assert {"Top share", "Top share SE", "Ins"} <= set(table) and "sanity" not in table
    assert table["Top share"].between(0.05, 1).all()  # the top 5% of pixels hold at least 5% of the mass
    listing = run_copy(root, "metrics")
    assert "| top_share " in listing.stdout and "complexity" in listing.stdout
    refused = run_copy(root, "compare", "metrics=[top_share]", "metric_knobs.top_share.fraction=0", "experiment=smoke")
    assert refused.returncode == 2 and "metric_knobs.top_share.fraction=0 is not valid: it must be a number > 0 " \
        "and <= 1" in refused.stderr, refused.stderr


@pytest.fixture(scope="module")
def copy_with_a_new_model(tmp_path_factory):
    return copy_with_readme_files(tmp_path_factory.mktemp("copy_model"), "cce_bench/models/resnet18.py",
                                  "configs/model/resnet18.yaml")


def test_a_model_added_as_the_readme_shows_runs_with_its_facts(copy_with_a_new_model):
    root = copy_with_a_new_model
    code = """
from cce_bench import create_model
from cce_bench.explainers import create_explainer
model = create_model("resnet18", random_init=True)
cam = create_explainer("gradcam_pp", model)
assert cam.layers[0] is model.net.layer4[1], cam.layers
assert create_explainer("appb", model).layers == ["layer2", "layer3"]
assert create_explainer("rise", model).N == 4000  # ModelFacts' default mask setting
print("facts ok")
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(root)}, timeout=300)
    assert result.returncode == 0 and "facts ok" in result.stdout, result.stderr
    game = run_copy(root, "pointing-game", "model=resnet18", "model.random_init=true", "methods=[gradcam_pp]",
                    "experiment=smoke", f"out={root / 'pg'}")
    assert game.returncode == 0, game.stderr
    assert "resnet18" in (root / "pg" / "table.md").read_text()
    assert list(pd.read_csv(root / "pg" / "records.csv")["method"]) == ["gradcam_pp"]


def test_every_subpackage_ships_in_the_wheel():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_every_knob_of_every_command_and_method_has_a_range_and_the_page_lists_it():
    from cce_bench.knob_table import knob_table
    from cce_bench.schema import knob_rules

    for name in EXPLAINERS.names():  # a number without bounds is a range nobody chose
        for knob, rule in knob_rules(name).items():
            assert rule.kind not in ("whole", "number") or rule.high is not None, f"{name}.{knob} has no upper bound"
    assert (ROOT / "docs" / "knobs.md").read_text() == knob_table(), "python -m cce_bench.knob_table > docs/knobs.md"


def test_every_pointer_to_a_section_of_the_docs_names_one_that_exists():
    """`(README: Heading)` and `(docs/FILE.md: Heading)` in the code, configs and scripts: the page exists and
    has a heading (or a bold paragraph title) that starts with those words."""
    pointers = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "configs").rglob("*.yaml"), *(ROOT / "scripts").glob("*")]:
        text = " ".join(path.read_text(errors="replace").split())  # a pointer may be split over two lines
        text = re.sub(r'"\s*"', "", text)  # or over two adjacent string literals
        pointers += [(path, page, title) for page, title in re.findall(r"\((README|docs/\w+\.md): ([^)]+)\)", text)]
    assert len(pointers) >= 8
    for path, page, title in pointers:
        target = ROOT / ("README.md" if page == "README" else page)
        assert target.is_file(), f"{path.name} points at {page}, which does not exist"
        page_text = target.read_text()
        titles = re.findall(r"^#+ (.+)$", page_text, re.M) + re.findall(r"\*\*([^*]+?)\.\*\*", page_text)
        assert any(t.startswith(title.strip()) for t in titles), f"{path.name} points at {page}: {title}, not a section"


def test_every_function_of_the_package_is_under_fifty_lines():
    """A function does one thing: the longest in the package stays under 50 lines (docstring included)."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 >= 50:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})")
    assert not long, "split these: " + ", ".join(long)
