"""What several test modules share: the checkout's root, a tiny CNN, a noise image, the command line."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

ROOT = Path(__file__).resolve().parent.parent


class TinyNet(nn.Module):
    """A small CNN on normalised input, quick enough for per-step reference loops."""

    def __init__(self, classes: int = 5, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6 * 4, classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.eval()

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(nn.functional.adaptive_avg_pool2d(h, 2).flatten(1))


def noise(path, size=(40, 30), mode="RGB"):
    rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode).save(path)


def run_cli(*args, env=None, timeout=600, cwd=None):
    """Run the installed command line the way a user does."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "cce_bench.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=str(cwd or ROOT))


class WarmCli:
    """One `cce-bench` process kept warm (tests/cli_worker.py) for commands that stop early: the same
    entry point as run_cli without paying the imports for each (about 10 s on 2 cores)."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "cli_worker.py")], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=str(ROOT))

    def run(self, *args, env=None) -> subprocess.CompletedProcess:
        import json

        self.process.stdin.write(json.dumps({"args": list(args), "env": env or {}}) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        return subprocess.CompletedProcess(list(args), answer["returncode"], "", answer["stderr"])

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def guide_text() -> str:
    """The user's documentation as one text: the README, then every page of the docs site (docs/, its folders too)."""
    return "\n".join(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))])


def readme_command(prefix: str, comment: str = "") -> list[str]:
    """The arguments of the one command line of the documentation (README or docs/) that starts with
    `prefix` and has `comment` in its comment (which is dropped), so that a test runs exactly what it shows."""
    import shlex

    lines = [line for line in guide_text().splitlines()
             if line.startswith(prefix) and comment in line.partition("#")[2]]
    commands = {tuple(shlex.split(line, comments=True)) for line in lines}  # a command page may repeat a guide's line
    assert len(commands) == 1, (
        f"the documentation has {len(commands)} commands starting with {prefix!r} (comment with {comment!r})"
    )
    (words,) = commands
    assert words[0] == "cce-bench"
    return list(words[1:])


def readme_code(first_line: str) -> str:
    """The code block of the documentation (README or docs/) whose first line is `first_line`."""
    import re

    blocks = re.findall(r"```(?:python|bash)\n(.*?)```", guide_text(), re.S)
    (block,) = {b for b in blocks if b.startswith(first_line)}  # the README may show a docs page's block again
    return block


def finished_batches(part) -> list[dict]:
    """The finished-batch lines of a run's parts/rankR.jsonl (its other lines are pieces of unfinished batches)."""
    import json

    lines = [json.loads(line) for line in part.read_text().splitlines() if line.strip()]
    return [line for line in lines if "piece" not in line]
