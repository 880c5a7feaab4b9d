"""The fuzzer in CI: a fixed, bounded set of hostile examples (about half a minute); `python scripts/fuzz.py
--minutes N` runs the same properties on fresh random examples for longer, and what it finds becomes a case in
tests/test_hostile_input.py."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzzing import (
    FILE_KINDS,
    FILE_READERS,
    check_file,
    check_new_key,
    check_override,
    command_and_key,
    override_values,
)


# derandomised: CI tries the same examples every time (a finding there is a failing test, not a flaky one)
def in_ci(examples: int):
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


@in_ci(120)
@given(command_and_key(), override_values())
def test_every_key_of_every_command_refuses_in_one_line_or_holds_a_value_its_rule_accepts(command_key, value):
    check_override(*command_key, value)


@in_ci(20)
@given(command_and_key(), st.sampled_from(["x", "s", "_", "2"]))
def test_a_key_the_command_does_not_have_is_refused_even_with_a_plus(command_key, typo):
    command, key = command_key
    check_new_key(command, key + typo)


@in_ci(120)
@given(st.sampled_from(sorted(FILE_READERS)), st.sampled_from(FILE_KINDS), st.binary(min_size=1, max_size=64))
def test_every_file_reader_refuses_a_hostile_file_in_one_line_without_hanging_or_unpickling(reader, kind, noise):
    with tempfile.TemporaryDirectory() as folder:
        check_file(reader, kind, Path(folder), noise)
