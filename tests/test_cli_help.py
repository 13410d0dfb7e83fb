"""Help for people (issue 15): every option described, examples that parse, the
environment and exit codes in `ipledger --help`, and shell completion of ids."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.shell_completion import ShellComplete

from ipledger.cli import EXAMPLES, cli
from tests.conftest import PATENT, Cli


def commands(command: click.Command = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from commands(sub, (*path, name))
    yield " ".join(path), command


LEAVES = [(name, command) for name, command in commands() if name and not isinstance(command, click.Group)]


@pytest.mark.parametrize(("name", "command"), LEAVES, ids=[name for name, _ in LEAVES])
def test_every_option_says_what_it_is_for(name: str, command: click.Command) -> None:
    undescribed = [p.name for p in command.params if isinstance(p, click.Option) and not p.help]
    assert undescribed == [], f"{name}: options without help"


@pytest.mark.parametrize(("name", "command"), LEAVES, ids=[name for name, _ in LEAVES])
def test_every_command_shows_examples_under_its_help(name: str, command: click.Command) -> None:
    assert EXAMPLES.get(name), f"{name}: no examples"
    assert command.epilog is not None and "Examples:" in command.epilog


def _argv(example: str) -> list[str]:
    """The ipledger argv of an example line: no VAR=value prefix, comment or redirection."""
    words = shlex.split(example, comments=True)
    assert "ipledger" in words, example
    words = words[words.index("ipledger") + 1 :]  # after any VAR=value prefix or `producer |`
    for cut, word in enumerate(words):
        if word in {"|", ">", ">>", "<"}:
            return words[:cut]
    return words


def _resolve(argv: list[str]) -> str:
    """Parse an argv down to its command without running it: options, types and required
    arguments are checked exactly as when a person types it."""
    ctx = cli.make_context("ipledger", list(argv))
    command: click.Command = cli
    path: list[str] = []
    while isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            break
        name, sub, remaining = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, remaining, parent=ctx)
        command, path = sub, [*path, name]
    return " ".join(path)


EXAMPLE_LINES = [(name, line) for name, lines in EXAMPLES.items() for line in lines]


@pytest.mark.parametrize(("name", "line"), EXAMPLE_LINES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(EXAMPLE_LINES)])
def test_each_example_parses_as_the_command_it_illustrates(
    name: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = _argv(line)
    for word in argv:  # the files an example reads (click opens them as it parses)
        if re.fullmatch(r"[\w.-]+\.(txt|json|jsonl|line)", word):
            (tmp_path / word).write_text("")
    resolved = _resolve(argv)
    assert resolved == name or resolved.startswith(f"{name} "), line


def test_top_level_help_names_the_environment_and_every_exit_code(run: Cli) -> None:
    text = run.ok("--help").stdout
    for name in ("IPLEDGER_DB", "IPLEDGER_ACTOR", "IPLEDGER_NOW"):
        assert name in text
    for code in (
        "0 done",
        "1 a rule refused it",
        "2 bad input",
        "3 lost a concurrent-write race",
        "4 integrity",
        "5 the store is unavailable",
    ):
        assert code in text


def test_projections_rebuild_help_lists_every_projection_name(run: Cli) -> None:
    from ipledger.projections.tables import PROJECTION_TABLES

    text = run.ok("projections", "rebuild", "--help").stdout
    assert all(name in text for name in PROJECTION_TABLES)


def test_import_help_describes_the_line_format(run: Cli) -> None:
    text = run.ok("import", "--help").stdout
    assert '"command": "listing.open", "args": {...}, "command_id"' in text


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_for_each_shell(run: Cli, shell: str) -> None:
    assert "_IPLEDGER_COMPLETE" in run.ok("completion", shell).stdout


def test_completion_of_an_unknown_shell_is_bad_input(run: Cli) -> None:
    assert run("completion", "powershell").exit_code == 2


def _complete(db: str, args: list[str], incomplete: str) -> list[str]:
    completer = ShellComplete(cli, {}, "ipledger", "_IPLEDGER_COMPLETE")
    return [item.value for item in completer.get_completions(["--db", db, *args], incomplete)]


def test_completion_offers_member_ids_from_the_store(run: Cli) -> None:
    assert _complete(run.db, ["member", "show"], "fu") == ["fudan-univ"]
    assert _complete(run.db, ["pledge", "register", PATENT, "--pledgee"], "i") == ["icbc-sh"]


def test_completion_offers_refs_in_any_case(run: Cli) -> None:
    assert _complete(run.db, ["owner"], "cn/patent/zl2018") == [PATENT]


def test_completion_offers_listing_ids(run: Cli) -> None:
    run.ok(
        *f"listing open {PATENT} --type assignment --mechanism english --currency CNY".split(),
        *"--closes 2026-03-10T00:00:00Z --ask 100000.00 --id L-1".split(),
        actor="fudan-univ",
    )
    assert _complete(run.db, ["book"], "L-") == ["L-1"]


def test_completion_without_a_store_offers_nothing_and_does_not_fail() -> None:
    assert _complete("postgresql+psycopg://nobody@127.0.0.1:1/none", ["member", "show"], "") == []


def test_completion_never_creates_a_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IPLEDGER_DB", raising=False)
    completer = ShellComplete(cli, {}, "ipledger", "_IPLEDGER_COMPLETE")
    assert completer.get_completions(["owner"], "CN") == []
    assert list(tmp_path.iterdir()) == []
