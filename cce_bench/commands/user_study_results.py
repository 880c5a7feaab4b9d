"""`cce-bench user-study-results FILES... study=DIR`: the user study's tables from its answer files.

Every file is checked against the study (study.json of the `user-study` run): broken files, files of
another study (another page or seed), unfinished ones and second files of one participant are skipped,
one line each (skipped.csv). Written: background.csv (the participants' make-up), methods.csv (mean score
with a bootstrap interval over participants, rank distribution, % ranked first), guesses.csv (how often
the model's answer was guessed before it was shown), answers.csv (one row per answer), table.md, user_study.png.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from ..errors import UserError
from ..figures import plot_user_study
from ..runs.engine import begin, finish_run
from ..runs.run_folder import RunFolder
from ..study.answers import (
    BadAnswers,
    answer_table,
    background_table,
    guess_table,
    preference_table,
    read_all,
    read_json_file,
)
from ..study.page import STUDY_FORMAT
from . import PlainCommand

# study.json embeds every image and map as a data URI: ~0.5 MB a set.
MAX_STUDY_BYTES = 2_000_000_000


def load_study(path_text: str) -> dict:
    path = Path(path_text).expanduser()
    if path.is_dir():
        path = path / "study.json"
    try:
        study = read_json_file(path, MAX_STUDY_BYTES)
    except BadAnswers as exc:
        raise UserError(f"study={path_text} is not a user-study run folder or its study.json ({exc}): pass the "
                        "folder `cce-bench user-study` wrote") from None
    if not isinstance(study, dict) or study.get("format") != STUDY_FORMAT:
        raise UserError(f"{path} is not a study written by `cce-bench user-study` (format {STUDY_FORMAT})")
    return study


def answer_files(given: list[str]) -> list[Path]:
    if not given:
        raise UserError("no answer files given: cce-bench user-study-results answers/*.json study=DIR")
    paths = []
    for text in given:
        path = Path(text).expanduser()
        if path.is_dir():
            paths += sorted(path.glob("*.json"))
        else:
            paths.append(path)
    return paths


def run_user_study_results(cfg: DictConfig) -> RunFolder:
    session = begin(cfg)
    cfg = session.cfg
    study = load_study(str(cfg.study))
    participants, skipped = read_all(answer_files(list(cfg.answers)), study)
    for row in skipped:
        print(f"warning: skipped {row['file']}: {row['reason']}", file=sys.stderr)
    if not participants:
        raise UserError(f"none of the {len(skipped)} answer files can be used (see the lines above): pass the files "
                        f"the page of study {study['study_id']} downloaded")
    answers = answer_table(participants)
    draws, confidence, seed = int(cfg.bootstrap), float(cfg.confidence), int(cfg.seed)
    background = background_table(participants)
    methods = preference_table(answers, study["methods"], study["labels"], draws, confidence, seed)
    guesses = guess_table(answers, draws, confidence, seed)
    run = RunFolder(cfg.out)
    run.write_config(cfg)
    run.write_csv("answers.csv", answers)
    run.write_csv("skipped.csv", pd.DataFrame(skipped, columns=["file", "reason"]))
    run.write_csv("background.csv", background)
    run.write_csv("methods.csv", methods)
    run.write_csv("guesses.csv", guesses)
    header = (f"User study {study['study_id']} ({study['model']}, {len(study['sets'])} sets): {len(participants)} "
              f"participants ({len(skipped)} files skipped). Scores 1-5, ranks 1 = best; intervals: {confidence:.0%} "
              f"bootstrap over participants ({draws} resamples, seed {seed}). C is CCE.")
    text = "\n\n".join([header, "Participants:", background.to_markdown(index=False),
                        "Methods:", methods.drop(columns="name").to_markdown(index=False),
                        "Guess of the model's answer, before it was shown:", guesses.to_markdown(index=False)])
    run.write_text("table.md", text + "\n")
    plot_user_study(run.path)
    finish_run(run, "user-study-results", session, {"study_id": study["study_id"], "participants": len(participants),
                                                    "skipped": len(skipped), "caption": header})
    print(f"\n{text}\n\nwritten to {run.path}")
    return run


COMMAND = PlainCommand("user-study-results", run_user_study_results)
