"""What a new user meets first: an answer to --help, a typo or a bad value before torch is loaded; each
command's own help; threads chosen from the cores the process may use; progress inside a batch on a
terminal; a CPU run saved image by image."""
import fcntl
import json
import os
import pty
import re
import shlex
import struct
import subprocess
import sys
import termios

import pytest

from cce_bench.commands import COMMANDS
from cce_bench.composing import compose_checked, positional_as_override, register_knob_nodes
from helpers import ROOT, finished_batches


def in_fresh_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(ROOT))


@pytest.mark.parametrize("args, says", [
    (["--help"], "usage: cce-bench COMMAND"), (["--version"], "cce-bench 0.1.0"),
    (["sweep", "--help"], "Tables 1-4 of the paper"), (["sweep", "alpah=1"], "unknown key 'alpah'"),
    (["frobnicate"], "unknown command"), (["sweep", "seed=-1"], "seed=-1 is not valid"),
    # a crop left to the model is known once the model is (test_hostile_input); one on the line is checked at once
    (["sweep", "data.resize=100", "data.crop=224"], "data.resize=100 is smaller than data.crop=224"),
])
def test_help_typos_and_shared_values_answer_without_loading_torch(args, says):
    result = in_fresh_python(
        f"import sys\nfrom cce_bench.cli import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded', file=sys.stderr)")
    assert says in result.stdout + result.stderr
    assert result.stderr.strip().endswith("torch not loaded"), result.stderr


def test_every_command_has_its_own_help_and_its_examples_compose():
    register_knob_nodes()
    for command, entry in COMMANDS.items():
        assert entry.description and entry.keys and entry.examples, command
        for example in entry.examples if entry.hydra else []:
            words = shlex.split(example)[2:]  # as a shell hands them over
            if entry.positional:
                words = positional_as_override(words, entry.positional)
            compose_checked(command, words)  # an unknown key or a bad value raises


def test_threads_follow_the_cores_the_process_may_use_and_the_threads_knob():
    result = in_fresh_python(
        "import os\nos.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "from cce_bench.runs.runtime import choose_threads, usable_cores\nimport torch\n"
        "print(usable_cores(), choose_threads(None), torch.get_num_threads(), choose_threads(3), "
        "torch.get_num_threads())"
    )
    assert result.stdout.split() == ["1", "1", "1", "3", "3"], result.stderr


def test_a_cpu_run_shows_progress_inside_its_batches_on_a_terminal_and_saves_each_image(tmp_path):
    """On a terminal (a pseudo-terminal here) the run's one bar counts the images out of the whole run, moves
    inside an image, and names the stage it is in; each image is its own batch."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cce_bench.cli", "sweep", "data.n_images=2", "param.values=[0.7]",
               "method_knobs.cce.M=1", "method_knobs.cce.steps=3", "metric_knobs.insertion_deletion.step=12544",
               f"out={out}"]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the command on the terminal
        os.chdir(ROOT)
        os.execv(command[0], command)
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a real terminal has a size
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    _, status = os.waitpid(pid, 0)
    text = shown.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert set(re.findall(r"CCE: \d+ counterfactuals \d+/4 steps|insertion/deletion: \d+ maps", text)) >= {
        "CCE: 1 counterfactuals 1/4 steps", "insertion/deletion: 1 maps"}
    totals = set(re.findall(r"\| \d\.\d/(\d+) \[", text))
    assert totals == {"2"}, text[-2000:]  # one bar, its total the run's images, never restarted per stage
    assert "| 2.0/2 [" in text
    parts = finished_batches(out / "parts" / "rank0.jsonl")
    assert [len(batch["records"]) for batch in parts] == [1, 1]  # one image per batch: a stop keeps each
    assert json.loads((out / "run.json").read_text())["threads"] >= 1
