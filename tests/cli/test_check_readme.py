"""The README's ``lbguard check`` example runs as written and prints what it shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lbguard.cli.main import ExitCode, main

ROOT = Path(__file__).resolve().parent.parent.parent


def readme_example() -> tuple[str, list[str], list[str]]:
    """Return the example's folder, its command words and its output lines."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```\n\$ cd (\S+)\n\$ lbguard (check [^\n]+)\n(.*?)```", text, re.DOTALL)
    assert match is not None, "README lacks the check example"
    shown = [line for line in match.group(3).splitlines() if line and line != "..."]
    return match.group(1), match.group(2).split(), shown


def test_readme_example_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, command, shown = readme_example()
    monkeypatch.chdir(ROOT / folder)

    code = main(command)
    out, err = capsys.readouterr()

    assert code == ExitCode.FINDINGS
    printed = (out + err).splitlines()
    for line in shown:
        assert line in printed, line
