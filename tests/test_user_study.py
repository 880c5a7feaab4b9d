"""The user study for real: the page built by `user-study`, filled in by headless Chromium through selenium,
its downloaded answers tabulated by `user-study-results` and checked against the answers the browser gave."""
import html
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from browser import headless_chromium, wait_for_file
from cce_bench.study.order import CHOICES, METHODS, shuffled
from cce_bench.study.page import render_page
from helpers import readme_command, run_cli

# The README's command, with the smoke preset's few CCE and IG steps and three sets (three photos).
SMALL = ["experiment=smoke", "sets=3", "data.n_images=3"]
# What each (browser) participant answers: background, a score per method (by name), the guess rule.
PARTICIPANTS = [
    {"seed": 11, "gender": "woman", "experience": 2, "knows": "no", "scores": {"gradcam_pp": 2, "ig": 3, "cce": 5},
     "guess_right": [True, False, True]},
    {"seed": 22, "gender": "man", "experience": 4, "knows": "yes", "scores": {"gradcam_pp": 4, "ig": 1, "cce": 3},
     "guess_right": [True, True, True]},
]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "run"
    result = run_cli(*readme_command("cce-bench user-study ", comment="the bundled photos"), *SMALL, f"out={out}")
    assert result.returncode == 0, result.stderr
    return out


def fill_in(driver, page, who, study_definition):
    """Answers the whole page as `who` and returns what was answered, read off the page itself."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def click_next():
        driver.find_element(By.ID, "next").click()

    driver.get(page.as_uri() + f"?participant={who['seed']}")
    click_next()  # nothing answered yet: the page refuses to go on
    assert driver.find_element(By.ID, "error").text == "Please answer all three questions."
    driver.find_element(By.CSS_SELECTOR, f'input[name="gender"][value="{who["gender"]}"]').click()
    driver.find_element(By.CSS_SELECTOR, f'input[name="ml_experience"][value="{who["experience"]}"]').click()
    driver.find_element(By.CSS_SELECTOR, f'input[name="knows_interpretability"][value="{who["knows"]}"]').click()
    click_next()
    assert "image classification" in driver.find_element(By.TAG_NAME, "h2").text
    click_next()
    intro = driver.find_element(By.ID, "screen").text
    assert "red = important" in intro and "in an order that changes from set to set" in intro  # CCE is not always C
    click_next()
    shown = []
    for i, asked in enumerate(study_definition["sets"]):
        offered = [e.get_attribute("value") for e in driver.find_elements(By.CSS_SELECTOR, 'input[name="guess"]')]
        assert sorted(offered) == sorted(asked["choices"]) and len(offered) == 4
        wrong = next(c for c in offered if c != asked["answer"])
        guess = asked["answer"] if who["guess_right"][i] else wrong
        driver.find_element(By.CSS_SELECTOR, f'input[name="guess"][value="{guess}"]').click()
        click_next()
        assert driver.find_element(By.ID, "answer").text == asked["answer"]
        # Which method is at A, B, C, told by the maps each shows (not by the page's order code).
        at = {}
        for letter in "ABC":
            sources = [
                img.get_attribute("src") for img in driver.find_elements(By.CSS_SELECTOR, f"#method-{letter} img")
            ]
            (method,) = [m for m, maps in asked["maps"].items() if maps == sources]
            at[letter] = method
        ranking = sorted("ABC", key=lambda letter: -who["scores"][at[letter]])
        for letter in "ABC":
            driver.find_element(
                By.CSS_SELECTOR, f'input[name="score-{letter}"][value="{who["scores"][at[letter]]}"]'
            ).click()
            Select(driver.find_element(By.NAME, f"rank-{letter}")).select_by_value("1")  # a rank twice first...
        click_next()
        assert driver.find_element(By.ID, "error").text == "Each rank (1, 2, 3) must be given once."
        for rank, letter in enumerate(ranking, start=1):  # ...then the real ranks
            Select(driver.find_element(By.NAME, f"rank-{letter}")).select_by_value(str(rank))
        click_next()
        shown.append({"choices": offered, "at": at, "guess": guess})
    driver.find_element(By.ID, "download").click()
    return shown


# Strings from the data (title, class names, image ids) that would run, or end the page's script, if they
# were markup: each tries to set a global the test then reads.
HOSTILE_TITLE = "</script><!--<script>window.pwned='title'</script>__STUDY__ &amp; \u2028\u2029"
HOSTILE_CLASS = "<img src=x onerror=window.pwned='class'>"
HOSTILE_ID = "</script><script>window.pwned='id'</script>"


def hostile_page_completes_without_running_its_data(definition, tmp_path):
    hostile = json.loads(json.dumps(definition))
    hostile["title"] = HOSTILE_TITLE
    for k, asked in enumerate(hostile["sets"]):
        renamed = {c: (HOSTILE_CLASS if c == asked["answer"] else f"<b>{c}</b>&lt;") for c in asked["choices"]}
        asked["choices"] = [renamed[c] for c in asked["choices"]]
        asked["answer"] = renamed[asked["answer"]]
        asked["image_id"] = f"{HOSTILE_ID}{k}"
    page = tmp_path / "hostile.html"
    page.write_text(render_page(hostile), encoding="utf-8")
    downloads = tmp_path / "hostile_downloads"
    downloads.mkdir()
    driver = headless_chromium(tmp_path / "hostile_profile", downloads)
    try:
        fill_in(driver, page, PARTICIPANTS[0], hostile)  # every screen works: the survey completes
        assert driver.execute_script("return window.pwned") is None
        assert "<!--<script>window.pwned='title'</script>__STUDY__ &amp;" in driver.title  # shown as text
        answers = json.loads(wait_for_file(downloads, "answers_*.json").read_text())
    finally:
        driver.quit()
    assert [s["image_id"] for s in answers["sets"]] == [s["image_id"] for s in hostile["sets"]]
    assert answers["sets"][0]["guess"] in hostile["sets"][0]["choices"]


def test_the_page_filled_in_by_a_browser_gives_the_tables_of_its_answers(study, tmp_path):
    definition = json.loads((study / "study.json").read_text())
    page = study / "study.html"
    assert (
        "<script src=" not in page.read_text() and "http" not in page.read_text().split("<script")[0]
    )  # self-contained
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = headless_chromium(tmp_path / "profile", downloads)
    try:
        shown = {}
        for who in PARTICIPANTS:
            shown[who["seed"]] = fill_in(driver, page, who, definition)
            wait_for_file(downloads, f"answers_{definition['study_id']}_{who['seed']}.json")
    finally:
        driver.quit()

    files = sorted(downloads.glob("*.json"))
    assert len(files) == 2
    hostile_page_completes_without_running_its_data(definition, tmp_path)
    # The order each participant saw is the one the seed gives: the page's generator and Python's agree.
    for who in PARTICIPANTS:
        for i, asked in enumerate(definition["sets"]):
            seen = shown[who["seed"]][i]
            assert seen["choices"] == shuffled(asked["choices"], definition["seed"], who["seed"], i, CHOICES)
            assert [seen["at"][k] for k in "ABC"] == shuffled(
                definition["methods"], definition["seed"], who["seed"], i, METHODS
            )
    # Orders differ between participants (and sets): the randomisation is real.
    assert any(shown[11][i]["at"] != shown[22][i]["at"] for i in range(3))

    # Files that must not count: a copy, a broken one, one of another study, one whose order was edited.
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(files[0], extra / "copy.json")
    (extra / "broken.json").write_text(files[0].read_text()[:200])
    other = json.loads(files[0].read_text())
    other["study_id"] = "0123456789ab"
    other["participant_seed"] = 99
    (extra / "other_study.json").write_text(json.dumps(other))
    edited = json.loads(files[1].read_text())
    edited["participant_seed"] = 77
    (extra / "edited.json").write_text(json.dumps(edited))
    unfinished = json.loads(files[1].read_text())
    unfinished["sets"] = unfinished["sets"][:1]
    unfinished["participant_seed"] = 55
    (extra / "unfinished.json").write_text(json.dumps(unfinished))

    out = tmp_path / "results"
    result = run_cli("user-study-results", *map(str, files), str(extra), f"study={study}", f"out={out}")
    assert result.returncode == 0, result.stderr
    skipped = pd.read_csv(out / "skipped.csv")
    reasons = dict(zip(skipped["file"].map(lambda f: f.rsplit("/", 1)[-1]), skipped["reason"]))
    assert set(reasons) == {"copy.json", "broken.json", "other_study.json", "edited.json", "unfinished.json"}
    assert reasons["copy.json"].startswith("a duplicate of answers_")
    assert reasons["broken.json"].startswith("not a JSON answer file")
    assert reasons["other_study.json"].startswith("from another study")
    assert "is not the page's for participant 77" in reasons["edited.json"]
    assert reasons["unfinished.json"] == "1 sets answered, the study has 3: an unfinished page"
    for name in reasons:
        assert sum(f"skipped {extra / name}:" in line for line in result.stderr.splitlines()) == 1

    # The tables, against what the browser answered.
    background = pd.read_csv(out / "background.csv", keep_default_na=False).set_index("what")["value"]
    assert background["gender: women"] == "50%" and background["gender: men"] == "50%"
    experience = np.array([2, 4])
    assert background["ML experience (1-5)"] == f"{experience.mean():.1f} ± {experience.std(ddof=1):.1f}"
    assert background["knows model interpretability"] == "50%"
    methods = pd.read_csv(out / "methods.csv").set_index("name")
    for method in definition["methods"]:
        given = [who["scores"][method] for who in PARTICIPANTS for _ in range(3)]
        assert methods.loc[method, "mean score"] == pytest.approx(np.mean(given), abs=0.005)
        assert (
            methods.loc[method, "CI 95% low"] <= methods.loc[method, "mean score"] <= methods.loc[method, "CI 95% high"]
        )
        firsts = [max(who["scores"], key=who["scores"].get) == method for who in PARTICIPANTS for _ in range(3)]
        assert methods.loc[method, "ranked 1 (%)"] == pytest.approx(100 * np.mean(firsts), abs=0.05)
    assert methods.loc["cce", "method"] == "CCE"
    guesses = pd.read_csv(out / "guesses.csv").set_index("image")
    right = [r for who in PARTICIPANTS for r in who["guess_right"]]
    assert guesses.loc["all", "correct (%)"] == pytest.approx(100 * np.mean(right), abs=0.05)
    assert len(pd.read_csv(out / "answers.csv")) == 2 * 3 * 3
    assert (out / "user_study.png").stat().st_size > 10_000 and "C is CCE" in (out / "table.md").read_text()

    # `report` renders both folders: the study's sets with their maps named, and the results' tables.
    from cce_bench.commands.report import write_report

    page, _ = write_report(str(study))
    text = page.read_text()
    for item in definition["sets"]:
        assert html.escape(item["image_id"]) in text and item["image"] in text
        for method, uris in item["maps"].items():
            assert all(uri in text for uri in uris), method
    assert 'href="study.html"' in text and all(label in text for label in definition["labels"].values())
    _, markdown = write_report(str(out))
    assert f"{methods.loc['cce', 'mean score']:.2f}" in markdown.read_text() and "Participants" in markdown.read_text()


def test_answers_of_another_study_alone_are_one_line(study, tmp_path, warm_cli):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "cce-bench-user-study-answers/1", "study_id": "ffffffffffff"}))
    result = warm_cli.run("user-study-results", str(other), f"study={study}", f"out={tmp_path / 'r'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("cce-bench: error: none of the 1 answer files can be used")
    missing = warm_cli.run("user-study-results", str(other), f"out={tmp_path / 'r2'}")
    assert missing.returncode == 2 and "study" in missing.stderr.splitlines()[-1]
    not_a_study = warm_cli.run("user-study-results", str(other), f"study={tmp_path}", f"out={tmp_path / 'r3'}")
    assert not_a_study.returncode == 2 and "is not a user-study run folder" in not_a_study.stderr


def test_methods_for_a_and_b_must_be_two_others_than_cce(tmp_path, warm_cli):
    for methods in ("[cce,ig]", "[gradcam_pp]"):
        result = warm_cli.run("user-study", f"methods={methods}", f"out={tmp_path / methods[1:3]}")
        assert result.returncode == 2
        assert "must name two methods other than cce for A and B (C is CCE)" in result.stderr.splitlines()[-1]


def answers_as_the_page_writes_them(definition, seed):
    """A complete answer file for participant `seed`, in the order the page draws for it."""
    sets = []
    for i, asked in enumerate(definition["sets"]):
        sets.append({"set": i, "image_id": asked["image_id"], "guess": asked["answer"], "guess_ms": 900,
                     "choices_shown": shuffled(asked["choices"], definition["seed"], seed, i, CHOICES),
                     "methods_shown": shuffled(definition["methods"], definition["seed"], seed, i, METHODS),
                     "scores": {"A": 3, "B": 4, "C": 5}, "ranks": {"A": 3, "B": 2, "C": 1}})
    return {"format": "cce-bench-user-study-answers/1", "study_id": definition["study_id"],
            "study_seed": definition["seed"], "participant_seed": seed,
            "background": {"gender": "woman", "ml_experience": 3, "knows_interpretability": "yes"}, "sets": sets}


def test_hostile_answer_files_are_skipped_with_their_reason(study, tmp_path):
    import os

    definition = json.loads((study / "study.json").read_text())
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "good.json").write_text(json.dumps(answers_as_the_page_writes_them(definition, 1)))
    os.mkfifo(folder / "fifo.json")                                   # would block a reader forever
    (folder / "deep.json").write_text("[" * 200_000 + "]" * 200_000)  # deeper than Python's parser goes
    (folder / "huge.json").write_bytes(b" " * 2_000_000)
    (folder / "folder.json").mkdir()
    os.symlink(folder / "loop.json", folder / "loop.json")
    for name, change in {"bool_score.json": lambda a: a["sets"][0]["scores"].update(A=True),
                         "float_rank.json": lambda a: a["sets"][1]["ranks"].update(A=3.0),
                         "bool_experience.json": lambda a: a["background"].update(ml_experience=True),
                         "list_guess.json": lambda a: a["sets"][0].update(guess=[a["sets"][0]["guess"]])}.items():
        answers = answers_as_the_page_writes_them(definition, 2 + len(list(folder.iterdir())))
        change(answers)
        (folder / name).write_text(json.dumps(answers))
    out = tmp_path / "results"
    result = run_cli("user-study-results", str(folder), f"study={study}", f"out={out}", timeout=120)
    assert result.returncode == 0, result.stderr
    skipped = pd.read_csv(out / "skipped.csv")
    reasons = dict(zip(skipped["file"].map(lambda f: f.rsplit("/", 1)[-1]), skipped["reason"]))
    assert reasons == {
        "fifo.json": "not a regular file (a pipe, socket or device)",
        "deep.json": "not a JSON answer file (nested too deep)",
        "huge.json": "2,000,000 bytes: larger than any answer file (1,000,000 bytes at most)",
        "folder.json": "not a regular file (a folder)",
        "loop.json": "cannot be read (Too many levels of symbolic links)",
        "bool_score.json": "set 1: a score is missing or outside 1..5",
        "float_rank.json": "set 2: the ranks are not 1, 2, 3 once each",
        "bool_experience.json": "the background answers are missing or out of range",
        "list_guess.json": "set 1: the guess is not one of the choices",
    }
    assert len(pd.read_csv(out / "answers.csv")) == 3 * 3  # the good file alone: 3 sets x 3 methods
