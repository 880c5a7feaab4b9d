"""The commands, one module each: sweep (Tables 1-4), pointing_game (Table 5), explain (figures), report,
train_calm. `cce_bench.cli` maps `cce-bench COMMAND` to `commands/COMMAND.py`."""
