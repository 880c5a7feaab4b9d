"""The documentation follows the code: a page per command with its --help examples, every page in the
site's navigation, the README short and undated, and the Python pages' code run as written."""
import re
import subprocess
import sys

import yaml

from cce_bench.commands import COMMANDS
from helpers import ROOT, readme_code

DOCS = ROOT / "docs"
# A machine or a date belongs on the Measurements page only (run folder names such as 2026-11-26_16-40-00 are
# examples of paths, not dates of a measurement).
DATED = re.compile(r"H200|EPYC|Xeon|\b\d-core\b|\b20\d\d-\d\d-\d\d\b(?!_)")


def nav_pages() -> set[str]:
    def walk(entry):
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            for value in entry.values():
                yield from walk(value)
        elif isinstance(entry, list):
            for item in entry:
                yield from walk(item)

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return set(walk(config["nav"]))


def test_every_command_has_a_page_that_shows_its_help_examples():
    pages = nav_pages()
    for name, entry in COMMANDS.items():
        page = DOCS / "commands" / f"{name}.md"
        assert page.is_file(), f"docs/commands/{name}.md is missing"
        assert f"commands/{name}.md" in pages, f"docs/commands/{name}.md is not in mkdocs.yml's nav"
        text = page.read_text()
        assert text.startswith(f"# cce-bench {name}\n"), page
        shown = {line.split("#")[0].strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)
                 for line in block.splitlines()}
        for example in entry.examples:
            assert example in shown, f"`{name} --help` shows `{example}`, which docs/commands/{name}.md does not"
        assert "## Keys" in text and "## Outputs" in text, page


def test_every_page_is_in_the_navigation_and_every_navigation_entry_exists():
    pages = {str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md")}
    assert pages == nav_pages()


def test_the_readme_is_short_and_no_page_but_measurements_dates_a_figure_or_names_its_machine():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    for path in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        if path.name == "measurements.md":
            continue
        found = [line for line in path.read_text().splitlines() if DATED.search(line)]
        assert not found, f"{path.relative_to(ROOT)} dates a figure or names a machine: {found[0][:100]}"
    measurements = (DOCS / "measurements.md").read_text()
    assert DATED.search(measurements) and "H200" in measurements


def test_licence_and_citation():
    licence = (ROOT / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert 'license = { text = "Apache-2.0" }' in (ROOT / "pyproject.toml").read_text()
    readme = (ROOT / "README.md").read_text()
    bibtex = re.search(r"```bibtex\n(.*?)```", readme, re.S).group(1)
    assert "Counterfactual-based Saliency Map" in bibtex and "@software{cce_bench" in bibtex
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["license"] == "Apache-2.0" and "Counterfactual-based" in citation["preferred-citation"]["title"]


def test_the_quick_start_and_the_python_api_page_run_as_written(tmp_path):
    quick_start = readme_code("# quick_start.py")
    assert quick_start in (DOCS / "index.md").read_text()  # the site's first page shows the README's
    blocks = [quick_start, *re.findall(r"```python\n(.*?)```", (DOCS / "api.md").read_text(), re.S)]
    assert len(blocks) == 6
    # One process for all of them (each block in a fresh namespace), as a user pastes them one after another.
    runner = "import sys\nfor path in sys.argv[1:]:\n    exec(compile(open(path).read(), path, 'exec'), {})\n"
    paths = []
    for i, block in enumerate(blocks):
        paths.append(tmp_path / f"block{i}.py")
        paths[-1].write_text(block)
    result = subprocess.run([sys.executable, "-c", runner, *map(str, paths)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    insertion, deletion = map(float, re.search(r"insertion ([\d.]+), deletion ([\d.]+)", out).groups())
    assert 0 < insertion < 1 and 0 < deletion < 1  # AUCs of probabilities, printed as the block prints them
    assert "torch.Size([2, 57])" in out  # step=896 at 224 x 224: 56 steps, both ends
    assert out.count("torch.Size([1, 224, 224])") == 5  # M_sup, M_pro, unified; two maps of the own network
    assert "Egyptian cat" in out  # CCE's first contrast class for chelsea, the model's second guess
    # compare: the three methods ranked, the centre prior among them, and a caption on what 3 images tell apart
    assert "centre_prior" in out and "GCAM+" in out and "RISE" in out
    assert "Every method on the same 3 images" in out and "Student's t" in out
