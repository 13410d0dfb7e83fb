"""Helpers shared by the CLI test files: read a JSON answer, move the pinned clock,
and assert the contract's rejection (exit code, one error line, unchanged store)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import Result

from tests.conftest import Cli


def doc(result: Result) -> Any:
    """The one JSON document a `--json` command printed on stdout."""
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def advance(run: Cli, when: str) -> str:
    """Move the pinned clock (IPLEDGER_NOW) forward for every later command."""
    assert when >= run.now, "the test clock must never go backwards"
    run.now = when
    return when


def assert_rejected(run: Cli, before: str, result: Result, code: int, name: str) -> str:
    """Exit code, one `error: Name: message` line on stderr, nothing on stdout, store unchanged."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    prefix = f"error: {name}: "
    assert lines[0].startswith(prefix), lines[0]
    assert len(lines[0]) > len(prefix), "the message must name the field and the rule"
    assert run.export() == before
    return lines[0][len(prefix) :]
