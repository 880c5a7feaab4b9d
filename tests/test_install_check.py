"""A torch/torchvision pair that does not fit is one line naming both versions and the pip command, said
before any work; not "a bug in cce-bench"."""
import sys

import pytest

from cce_bench import cli
from cce_bench.errors import UserError, describe_error
from cce_bench.install_check import check_torch_pair, fitting_torchvision


def test_the_fitting_torchvision_of_each_torch_release():
    assert fitting_torchvision("2.0.1") == "0.15" and fitting_torchvision("2.14.1+cpu") == "0.29"
    assert fitting_torchvision("3.0.0") is None and fitting_torchvision("nightly") is None


def test_a_pair_that_does_not_fit_names_both_versions_and_the_fix():
    with pytest.raises(UserError) as raised:
        check_torch_pair("2.13.0", "0.29.1")
    message = str(raised.value)
    assert message.startswith("torchvision 0.29.1 does not fit torch 2.13.0")
    # --force-reinstall: a pair whose numbers fit but whose builds do not would be "already satisfied"
    assert 'pip install --force-reinstall --no-deps "torch==2.13.0" "torchvision==0.28.*"' in message
    with pytest.raises(UserError, match=r"--index-url https://download.pytorch.org/whl/cu121$"):
        check_torch_pair("2.13.0+cu121", "0.29.1+cpu")  # the installed torch's own build index
    check_torch_pair()  # this environment's own pair fits


def test_missing_compiled_operators_are_named_too(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` now fails
    with pytest.raises(UserError, match=r"torchvision \S+ does not fit torch \S+ \(.*torchvision"):
        check_torch_pair()
    message, code = describe_error(RuntimeError("operator torchvision::nms does not exist"))
    assert code == 2 and "does not fit torch" in message and "bug" not in message


def test_the_command_line_stops_before_any_work(monkeypatch, tmp_path, capsys):
    versions = {"torch": "2.13.0", "torchvision": "0.29.1"}
    monkeypatch.setattr("cce_bench.install_check.metadata.version", lambda name: versions[name])
    with pytest.raises(SystemExit) as exited:
        cli.main(["sweep", "experiment=smoke", f"out={tmp_path / 'run'}"])
    assert exited.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "torchvision 0.29.1 does not fit torch 2.13.0" in error
    assert not (tmp_path / "run").exists()
