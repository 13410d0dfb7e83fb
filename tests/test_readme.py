"""The README's promises, run as written: its quick start is two commands, and its
"A session at the exchange" block runs in a fresh folder, on any day, with `bash -euo pipefail`."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import ipledger.cli

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- readme-session:"
PATENT = re.escape("CN/patent/ZL201810012345.6")


def fenced_block_after(text: str, anchor: str) -> str:
    """The body of the first ```sh block after `anchor` (a heading or a marker comment)."""
    start = text.index(anchor)
    match = re.compile(r"^```sh\n(.*?)^```$", re.S | re.M).search(text, start)
    assert match is not None, f"no ```sh block after {anchor!r}"
    return match.group(1)


def test_quick_start_is_two_commands() -> None:
    block = fenced_block_after(README.read_text(encoding="utf-8"), "## Quick start")
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["scripts/ipledger demo", "scripts/test"]


def checkout_shim(root: Path) -> dict[str, str]:
    """A folder that stands for the checkout under test, as the README's block sees it: its
    `scripts/ipledger` runs this interpreter on the ipledger this test imported (the
    repository's .venv in CI; nothing is installed). Returns the environment to run in."""
    script = root / "scripts" / "ipledger"
    script.parent.mkdir(parents=True)
    code = "from ipledger.cli import run; run()"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)} "$@"\n')
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_") and k != "REPO"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
    where = subprocess.run(
        [sys.executable, "-c", "import ipledger.cli; print(ipledger.cli.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).resolve() == Path(ipledger.cli.__file__).resolve(), "the shim must run the code under test"
    return env


@pytest.mark.slow  # some 40 commands, each a fresh process
def test_the_exchange_session_runs_as_written(tmp_path: Path) -> None:
    block = fenced_block_after(README.read_text(encoding="utf-8"), MARKER)
    assert "## A session at the exchange" in README.read_text(encoding="utf-8").split(MARKER)[0]
    checkout, temp = tmp_path / "checkout", tmp_path / "tmp"
    temp.mkdir()
    env = checkout_shim(checkout)
    env["TMPDIR"] = str(temp)  # where the block's `mktemp -d` makes its fresh folder

    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=checkout, env=env, capture_output=True, text=True, timeout=300
    )
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"

    # The store went into a fresh folder of its own, not the checkout.
    (market,) = [p for p in temp.iterdir() if p.is_dir()]
    assert (market / "market.db").is_file()
    assert sorted(p.name for p in checkout.iterdir()) == ["scripts"]

    # The sale moved title; the as-of question answers for the day before.
    assert re.search(rf"^{PATENT}\n  huawei +1$", out, re.M), out
    assert re.search(rf"^{PATENT} as of 2025-03-11\n  fudan-univ +1$", out, re.M), out
    assert re.search(r"^T-1 +L-1 .* huawei +195000\.00 +CNY +settled ", out, re.M), out
    # The pledge is listed, and the licence needed the bank's consent.
    assert re.search(rf"^P-1 +{PATENT} +icbc-sh +1 +5000000\.00 +CNY +2025-04-01 +2030-12-31$", out, re.M), out
    assert err.splitlines()[0].startswith("error: AssetPledged: "), err
    assert "refused: the bank must consent first" in out
    assert re.search(r"^  licence LIC-1: exclusive to zte CN x ALL", out, re.M), out
    assert "applied 2 command(s); skipped 0" in out and "applied 0 command(s); skipped 2" in out
    # The auditor's digest verifies, and the export holds every event up to it.
    digest = re.search(r"^digest: (\d+):([0-9a-f]{64})$", out, re.M)
    assert digest is not None, out
    assert f"ok: {digest[1]} events, head {digest[1]}:{digest[2]};" in out
    assert len((market / "log.jsonl").read_text(encoding="utf-8").splitlines()) == int(digest[1])
    assert "ok: signature, inclusion of the leaf verified for ipledger.exchange.example/main at size" in out
    assert len(err.splitlines()) == 1, err  # the one refusal the block shows, nothing else


def test_the_serve_it_block_runs_as_written(tmp_path: Path) -> None:
    """The README's "Serve it" block in a stand-in checkout: the demo's store, a token, a real
    server on a free port (the block's 8000 replaced), a query and a command with curl."""
    import shutil
    import socket

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    text = README.read_text(encoding="utf-8")
    block = fenced_block_after(text, "<!-- readme-serve:")
    assert "## Serve it" in text.split("<!-- readme-serve:")[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    checkout = tmp_path / "checkout"
    env = checkout_shim(checkout)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.replace("8000", str(port))],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert '{"listings":[{"listing":"L-' in done.stdout
    assert '{"id":"acme","status":"active"}\n' in done.stdout
    assert "<h1>Listing L-AUCTION</h1>\n" in done.stdout  # the web view's page, with the same token
    assert (checkout / "ipledger.db").is_file()
