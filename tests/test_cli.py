"""The `effvid` command, run as a user runs it (a subprocess of the installed console script)."""

import subprocess
import sys
from pathlib import Path

import pytest

import effvid
from effvid.cli import main


def test_models_table_lists_every_model_with_costs(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in effvid.list_models():
        assert name in out
    assert "GFLOPs total" in out and "multiply-adds" in out
    vmf_xs = next(line for line in out.splitlines() if line.startswith("vmf_xs "))
    assert "8x160x160" in vmf_xs and "2x1" in vmf_xs and "0.993" in vmf_xs


def test_models_markdown_and_csv(capsys):
    assert main(["models", "vmf_*", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("model,family,params (M)")
    assert len(lines) == 1 + len(effvid.list_models("vmf_*"))
    assert main(["models", "mobileformer_*", "--format", "markdown"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("|---")


def test_card_and_unknown_model(capsys):
    assert main(["card", "vmf_xxs"]) == 0
    assert "image_base" in capsys.readouterr().out
    assert main(["card", "vmf_xss"]) == 2
    assert "did you mean" in capsys.readouterr().err


SCRIPT = Path(sys.executable).parent / "effvid"


@pytest.mark.skipif(not SCRIPT.exists(), reason="effvid is not installed beside this Python")
@pytest.mark.subprocess
def test_console_script_runs():
    result = subprocess.run([SCRIPT, "models", "vmf_*"], capture_output=True, text=True, check=True)
    assert "vmf_l" in result.stdout


NO_HEAVY_IMPORTS = """
import sys
from effvid.cli import main
try:
    main([sys.argv[1]])
except SystemExit:
    pass
heavy = {"torch", "av"} & set(sys.modules)
assert not heavy, sorted(heavy)
"""


@pytest.mark.parametrize("option", ["--version", "--help"])
@pytest.mark.subprocess
def test_version_and_help_import_neither_torch_nor_pyav(option):
    subprocess.run([sys.executable, "-c", NO_HEAVY_IMPORTS, option], check=True)


def test_progress_logs_go_to_the_stderr_of_the_moment(monkeypatch):
    """A command's log lines went to the stderr of the first command of the process: once that
    one was closed (a caller capturing each command's output), every line was a logging error."""
    import io
    import logging

    from effvid.cli import _show_progress_logs

    logger = logging.getLogger("effvid")
    monkeypatch.setattr(logger, "handlers", [])
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    _show_progress_logs()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logger.info("epoch 1 done")
    assert second.getvalue() == "epoch 1 done\n"
