"""No write through a link planted in a run folder: every file the suite writes there is opened without
following links and a link is refused with one line; a refused run writes nothing."""
import os

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from cce_bench.errors import UserError
from cce_bench.figures import save_png
from cce_bench.runs.run_folder import RunFolder
from helpers import run_cli

VICTIM_TEXT = "precious\n"


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim"
    path.write_text(VICTIM_TEXT)
    return path


def plant(link, victim):
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() or link.is_symlink():
        link.unlink()
    os.symlink(victim, link)


@pytest.mark.parametrize("name, write", [
    (".lock", lambda run: run.lock()),
    ("table.csv", lambda run: run.write_csv("table.csv", pd.DataFrame({"a": [1]}))),
    ("run.json", lambda run: run.write_json("run.json", {"status": "complete"})),
    (f".table.md.{os.getpid()}.tmp", lambda run: run.write_text("table.md", "x")),
    ("parts/rank0.jsonl", lambda run: run.append_batch(0, 0, [{"a": 1}], [])),
    ("curves.png", lambda run: save_png(plt.figure(), run.path / "curves.png")),
], ids=[".lock", "table.csv", "run.json", "a table's temporary file", "parts", "curves.png"])  # no pid in an id
def test_every_writer_refuses_a_link_in_the_run_folder(tmp_path, victim, name, write):
    run = RunFolder(tmp_path / "run")
    plant(run.path / name, victim)
    with pytest.raises(UserError, match="is a symbolic link: cce-bench never writes through links"):
        write(run)
    assert victim.read_text() == VICTIM_TEXT and (run.path / name).is_symlink()


def test_a_linked_subfolder_and_records_read_through_a_link_are_refused(tmp_path, victim):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "run").mkdir()
    os.symlink(elsewhere, tmp_path / "run" / "parts")
    with pytest.raises(UserError, match="parts is a symbolic link"):
        RunFolder(tmp_path / "run")
    run = RunFolder(tmp_path / "other")
    plant(run.path / "parts" / "rank1.jsonl", victim)
    with pytest.raises(UserError, match="rank1.jsonl is a symbolic link"):
        run.finished_batches()


def test_a_refused_rerun_writes_nothing_through_a_planted_lock(tmp_path, victim, warm_cli):
    out = tmp_path / "run"
    first = run_cli("sweep", "experiment=smoke", "param.values=[0.7]", f"out={out}")
    assert first.returncode == 0, first.stderr
    plant(out / ".lock", victim)
    refused = warm_cli.run("sweep", "experiment=smoke", "param.values=[0.7]", "seed=7", f"out={out}")
    assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0, refused.stderr
    assert ".lock is a symbolic link" in refused.stderr and victim.read_text() == VICTIM_TEXT
    os.unlink(out / ".lock")
    plant(out / "table.md", victim)  # the same config resumes and rewrites its tables: refused at the link
    resumed = warm_cli.run("sweep", "experiment=smoke", "param.values=[0.7]", f"out={out}")
    assert resumed.returncode == 2 and "table.md is a symbolic link" in resumed.stderr
    assert victim.read_text() == VICTIM_TEXT


def damage_part_line(path):
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"batch": "x", "records": 5}\n{"batch": 1}\n')


def replace_by(kind):
    def damage(path):
        if path.is_dir() and not path.is_symlink():
            import shutil

            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        if kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "garbage":
            path.write_bytes(b"garbage{")
    return damage


def link_elsewhere(path):
    elsewhere = path.parent.parent / f"elsewhere_{path.name}"
    os.rename(path, elsewhere)
    os.symlink(elsewhere, path)


DAMAGES = [
    ("parts/rank0.jsonl", damage_part_line, None),  # lines of another shape: their batches are done again
    ("fingerprint.json", replace_by("garbage"), "fingerprint.json is damaged (JSONDecodeError"),
    (".lock", replace_by("folder"), ".lock is a folder, where the run keeps a file"),
    ("parts/rank0.jsonl", replace_by("fifo"), "rank0.jsonl is a FIFO, where the run keeps a file"),
    ("maps/gbp.npz", link_elsewhere, "gbp.npz is a symbolic link"),
    ("maps", link_elsewhere, "maps is a symbolic link"),
    ("maps/gbp.npz", replace_by("garbage"), "gbp.npz is damaged ("),
]


FINISHED_RUN = ["methods=[gbp]", "data=photos", "data.n_images=2", "metrics=[insertion_deletion]",
                "metric_knobs.insertion_deletion.step=3136", "save_maps=true"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    result = run_cli("compare", *FINISHED_RUN, f"out={out}")
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("where, damage, message", DAMAGES, ids=[f"{w}-{i}" for i, (w, _, _) in enumerate(DAMAGES)])
def test_a_damaged_run_folder_resumes_or_is_refused_in_one_line_without_hanging(tmp_path, finished_run, where,
                                                                               damage, message, warm_cli):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run, symlinks=True)
    (run / "run.json").unlink()  # the run open again: its finished batches are read back
    damage(run / where)
    result = warm_cli.run("compare", *FINISHED_RUN, f"out={run}")
    if message is None:
        assert result.returncode == 0, result.stderr
        assert pd.read_csv(run / "records.csv").equals(pd.read_csv(finished_run / "records.csv"))
    else:
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 2 and last.startswith("cce-bench: error:") and message in last, result.stderr
        assert result.stderr.count("error:") == 1 and "bug in cce-bench" not in result.stderr
