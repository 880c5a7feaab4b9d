"""The settings of a run that every command shares (the root of each command's config)."""
from __future__ import annotations

from dataclasses import dataclass

from ..knobs import Knobs, knob
from ..models.precision import PRECISIONS
from ..rules import Rule

# The seed feeds numpy's and torch's generators, which take 32-bit seeds.
SEED = Rule("whole", 0, 2**32 - 1)


@dataclass
class RunSettings(Knobs):
    """Every command's run: its seed, device, precision, batch sizes and output folder."""

    seed: int = knob(0, SEED, "the seed of every random draw (the image sample, RISE's masks, random contrasts)")
    precision: str = knob("tf32", Rule("choice", choices=PRECISIONS),
                          "fp32, tf32 (cuDNN/cuBLAS TF32 on a GPU, PyTorch's default for convolutions) or bf16 "
                          "(docs/speed.md: Speed, precision and memory)")
    deterministic: bool = knob(True, Rule("bool"), "deterministic kernels where torch has them (docs/runs.md: "
                                                   "Determinism)")
    device: str = knob("auto", Rule("text"), "auto: cuda if torch sees a GPU, else cpu; or cpu, cuda, cuda:N")
    batch_size: int | None = knob(None, Rule("whole", 1, 100_000, nullable=True),
                                  "model inputs per forward pass; null: 16 on a CPU, 256 on a GPU")
    images_per_batch: int | None = knob(None, Rule("whole", 1, 100_000, nullable=True),
                                        "images (or pairs) explained and scored together (one progress step); null: "
                                        "1 on a CPU (each image saved as it is done), 32 on a GPU")
    num_workers: int = knob(0, Rule("whole", 0, 256), "DataLoader workers reading images")
    threads: int | None = knob(None, Rule("whole", 1, 1024, nullable=True),
                               "CPU threads for torch; null: the cores this process may use (docs/speed.md: Threads)")
    save_maps: bool = knob(False, Rule("bool"), "true: every map the run scores, kept as maps/METHOD.npz "
                                                "(image_id -> [H, W]) for other tools")
    out: str | None = knob(None, Rule("text", nullable=True),
                           "the run's folder (a rerun with the same out resumes it); null: "
                           "results/runs/<time>_<run_name> (hydra.run.dir), recorded in config.yaml")
