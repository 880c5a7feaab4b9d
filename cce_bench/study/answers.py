"""Answer files of the user study: read, checked against the study, and tabulated as the paper reports them."""
from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .order import CHOICES, METHODS, shuffled
from .page import ANSWERS_FORMAT

LETTERS = ("A", "B", "C")
GENDERS = ("man", "woman", "non-binary", "not reported")
GENDER_ROWS = {"man": "men", "woman": "women", "non-binary": "non-binary", "not reported": "not reported"}


class BadAnswers(Exception):
    """One answer file that cannot count: the message says why (it is skipped, with that line)."""


@dataclass
class Participant:
    path: Path
    seed: int
    background: dict
    sets: list[dict]   # per set: image_id, guess, correct, scores {method: 1..5}, ranks {method: 1..3}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadAnswers(message)


# An answer file holds ~1 kB per set; anything far larger is not one (and is not read whole).
MAX_ANSWER_BYTES = 1_000_000


def read_json_file(path: Path, limit: int) -> object:
    """A regular file of at most `limit` bytes, parsed as JSON; BadAnswers says why not. A FIFO or a
    device is never opened (reading one would wait forever), and nesting too deep to parse is a reason."""
    try:
        info = path.stat()
    except OSError as exc:
        raise BadAnswers(f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a pipe, socket or device"
        raise BadAnswers(f"not a regular file ({kind})")
    if info.st_size > limit:
        raise BadAnswers(f"{info.st_size:,} bytes: larger than any answer file ({limit:,} bytes at most)")
    try:
        with open(path, "rb") as handle:
            text = handle.read(limit + 1).decode("utf-8")
        return json.loads(text)
    except RecursionError:
        raise BadAnswers("not a JSON answer file (nested too deep)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadAnswers(f"not a JSON answer file ({type(exc).__name__})") from None


def _whole(value, allowed) -> bool:
    """A JSON whole number among `allowed` (true is not 1, 1.0 is not 1)."""
    return type(value) is int and value in allowed


def read_answers(path: Path, study: dict) -> Participant:
    """One file checked against the study: its format, its study, every answer in range, and the order it
    says it showed equal to the order the page draws for its participant seed."""
    data = read_json_file(path, MAX_ANSWER_BYTES)
    if not isinstance(data, dict) or data.get("format") != ANSWERS_FORMAT:
        raise BadAnswers(f"not an answer file of this page (format is not {ANSWERS_FORMAT})")
    _require(data.get("study_id") == study["study_id"],
             f"from another study (study {data.get('study_id')!r}, this one is {study['study_id']!r}): "
             "a different page or seed")
    _require(
        data.get("study_seed") == study["seed"],
        f"study seed {data.get('study_seed')!r} is not this study's {study['seed']}",
    )
    seed = data.get("participant_seed")
    _require(type(seed) is int and 0 <= seed <= 0xFFFFFFFF,
             "participant_seed is missing or not a whole number in 0..4294967295")
    background = data.get("background")
    _require(isinstance(background, dict) and isinstance(background.get("gender"), str)
             and background.get("gender") in GENDERS and _whole(background.get("ml_experience"), range(1, 6))
             and isinstance(background.get("knows_interpretability"), str)
             and background.get("knows_interpretability") in ("yes", "no"),
             "the background answers are missing or out of range")
    sets = data.get("sets")
    _require(isinstance(sets, list) and len(sets) == len(study["sets"]),
             f"{len(sets) if isinstance(sets, list) else 'no'} sets answered, the study has {len(study['sets'])}: "
             "an unfinished page")
    assert isinstance(sets, list) and isinstance(seed, int) and isinstance(background, dict)  # required above
    rows = [answered_set(i, given, asked, study, seed) for i, (given, asked) in enumerate(zip(sets, study["sets"]))]
    return Participant(path, seed, dict(background), rows)


def answered_set(i: int, given, asked: dict, study: dict, seed: int) -> dict:
    """Set i of an answer file checked against the study (its image, the order the page drew for this
    participant, the guess among the choices, scores 1..5, ranks 1..3 once each), as one row."""
    _require(isinstance(given, dict) and given.get("image_id") == asked["image_id"], f"set {i + 1} is of another image")
    choices = shuffled(asked["choices"], study["seed"], seed, i, CHOICES)
    order = shuffled(study["methods"], study["seed"], seed, i, METHODS)
    _require(given.get("choices_shown") == choices and given.get("methods_shown") == order,
             f"set {i + 1}: the order it says was shown is not the page's for participant {seed}")
    _require(isinstance(given.get("guess"), str) and given["guess"] in asked["choices"],
             f"set {i + 1}: the guess is not one of the choices")
    scores, ranks = given.get("scores"), given.get("ranks")
    _require(isinstance(scores, dict) and all(_whole(scores.get(k), range(1, 6)) for k in LETTERS),
             f"set {i + 1}: a score is missing or outside 1..5")
    _require(isinstance(ranks, dict) and all(_whole(ranks.get(k), range(1, 4)) for k in LETTERS)
             and sorted(ranks[k] for k in LETTERS) == [1, 2, 3],
             f"set {i + 1}: the ranks are not 1, 2, 3 once each")
    return {"set": i, "image_id": asked["image_id"], "guess": given["guess"],
            "correct": given["guess"] == asked["answer"],
            "scores": {order[k]: scores[letter] for k, letter in enumerate(LETTERS)},
            "ranks": {order[k]: ranks[letter] for k, letter in enumerate(LETTERS)}}


def read_all(paths: list[Path], study: dict) -> tuple[list[Participant], list[dict]]:
    """The usable participants, and one (file, reason) per file left out: broken, of another study, or a
    second file of the same participant (a duplicate download or a copy)."""
    participants: list[Participant] = []
    skipped: list[dict] = []
    seen: dict = {}
    for path in paths:
        try:
            participant = read_answers(path, study)
        except BadAnswers as exc:
            skipped.append({"file": str(path), "reason": str(exc)})
            continue
        if participant.seed in seen:
            first = seen[participant.seed]
            same = first.background == participant.background and first.sets == participant.sets
            skipped.append({"file": str(path), "reason": f"{'a duplicate of' if same else 'the same participant as'} "
                                                        f"{first.path.name} (participant {participant.seed})"})
            continue
        seen[participant.seed] = participant
        participants.append(participant)
    return participants, skipped


def answer_table(participants: list[Participant]) -> pd.DataFrame:
    """One row per (participant, set, method): score, rank, and whether the guess was right."""
    return pd.DataFrame([{"participant": p.seed, "set": row["set"], "image_id": row["image_id"], "method": method,
                          "score": row["scores"][method], "rank": row["ranks"][method], "correct": row["correct"]}
                         for p in participants for row in p.sets for method in row["scores"]])


def background_table(participants: list[Participant]) -> pd.DataFrame:
    """The participants' make-up as the paper reports it: % per gender, ML experience mean ± sd (1-5),
    % who know model interpretability."""
    n = len(participants)
    genders = [p.background["gender"] for p in participants]
    experience = np.array([p.background["ml_experience"] for p in participants], dtype=float)
    rows = [{"what": f"gender: {GENDER_ROWS[g]}", "value": f"{100 * genders.count(g) / n:.0f}%",
             "count": genders.count(g)} for g in GENDERS]
    sd = experience.std(ddof=1) if n > 1 else 0.0
    rows.append({"what": "ML experience (1-5)", "value": f"{experience.mean():.1f} ± {sd:.1f}", "count": n})
    knows = sum(p.background["knows_interpretability"] == "yes" for p in participants)
    rows.append({"what": "knows model interpretability", "value": f"{100 * knows / n:.0f}%", "count": knows})
    return pd.DataFrame(rows)


def bootstrap_interval(per_participant: np.ndarray, weights: np.ndarray, draws: int, confidence: float,
                       rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of the mean over answers, participants resampled with replacement (a participant's
    answers stay together: they are not independent of each other)."""
    picks = rng.integers(0, len(per_participant), size=(draws, len(per_participant)))
    means = (per_participant[picks] * weights[picks]).sum(1) / weights[picks].sum(1)
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def preference_table(answers: pd.DataFrame, methods: list[str], labels: dict, draws: int, confidence: float,
                 seed: int) -> pd.DataFrame:
    """Per method: mean score with its bootstrap interval, rank distribution, % ranked first, mean rank."""
    rng = np.random.default_rng(seed)
    rows = []
    for method in methods:
        mine = answers[answers["method"] == method]
        per = mine.groupby("participant")["score"].agg(["sum", "count"])
        low, high = bootstrap_interval((per["sum"] / per["count"]).to_numpy(), per["count"].to_numpy(dtype=float),
                                       draws, confidence, rng)
        share = mine["rank"].value_counts(normalize=True)
        rows.append({"method": labels.get(method, method), "name": method, "answers": len(mine),
                     "mean score": round(float(mine["score"].mean()), 2),
                     f"CI {confidence:.0%} low": round(low, 2), f"CI {confidence:.0%} high": round(high, 2),
                     **{f"ranked {r} (%)": round(100 * float(share.get(r, 0.0)), 1) for r in (1, 2, 3)},
                     "mean rank": round(float(mine["rank"].mean()), 2)})
    return pd.DataFrame(rows)


def guess_table(answers: pd.DataFrame, draws: int, confidence: float, seed: int) -> pd.DataFrame:
    """How often the participants guessed the model's answer before seeing it, overall and per image."""
    per_set = answers.drop_duplicates(["participant", "set"])
    per = per_set.groupby("participant")["correct"].agg(["sum", "count"])
    low, high = bootstrap_interval((per["sum"] / per["count"]).to_numpy(), per["count"].to_numpy(dtype=float),
                                   draws, confidence, np.random.default_rng(seed))
    rows = [{"image": "all", "guesses": len(per_set), "correct (%)": round(100 * float(per_set["correct"].mean()), 1),
             f"CI {confidence:.0%} low": round(100 * low, 1), f"CI {confidence:.0%} high": round(100 * high, 1)}]
    for image, group in per_set.groupby("image_id", sort=False):
        rows.append(
            {"image": image, "guesses": len(group), "correct (%)": round(100 * float(group["correct"].mean()), 1)}
        )
    return pd.DataFrame(rows)
