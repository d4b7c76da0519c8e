"""Bad input gets one line and exit status 2; a bug inside effvid keeps its traceback."""

import pytest

from effvid import cli
from effvid.errors import InputError


def _command_raising(monkeypatch, error: Exception) -> None:
    def run(args):
        raise error

    monkeypatch.setattr(cli, "_models", run)  # what `effvid models` runs


def test_bad_input_is_one_line_and_status_2(monkeypatch, capsys):
    _command_raising(monkeypatch, InputError("window must be at least 1 step, got 0"))
    assert cli.main(["models"]) == 2
    assert capsys.readouterr().err == "effvid: error: window must be at least 1 step, got 0\n"


def test_a_missing_file_is_one_line(monkeypatch, capsys):
    _command_raising(monkeypatch, FileNotFoundError(2, "No such file or directory", "a.mp4"))
    assert cli.main(["models"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("bug", [ValueError("bad shape"), TypeError("x"), KeyError("k")])
def test_a_bug_inside_keeps_its_traceback(monkeypatch, bug):
    _command_raising(monkeypatch, bug)
    with pytest.raises(type(bug)):
        cli.main(["models"])
