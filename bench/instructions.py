"""Instructions a unit of work costs, counted by callgrind: a figure that does not drift.

    python bench/instructions.py                  # interactive commands, ours and naive
    python bench/instructions.py --fold           # also a restore's fold, per export line

On a shared VM the clock moves by more than one change does (the same import ran 9%
faster at 16:00 than at 15:20, docs/performance.md, eighth round), so a step of
2-3% cannot be told from noise by seconds. `valgrind --tool=callgrind` counts the
instructions a process runs in user space, the same on every run of the same code and
input. Each figure runs the work twice, small and large, and reports the difference per
unit, so the start (imports, opening the store) drops out.

What the count leaves out is the kernel's work (each commit's WAL frames and fsync) and
what cache misses cost: it says whether a change did less, not how much sooner it ends.
About 50 times slower than running natively: a few minutes in all.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Each child: `python -c CODE N WORKDIR`; it does N units of its work and exits.
OURS = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.run import interactive_commands
from ipledger.service import Ledger
n, work = int(sys.argv[1]), Path(sys.argv[2])
ledger = Ledger(f"sqlite:///{{work}}/ours-{{n}}.db")
ledger.exchange
for name, args in interactive_commands(n)[:n]:
    ledger.execute(name, args)
"""

NAIVE = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.run import naive_commands
from eventsourcing.application import Application
n, work = int(sys.argv[1]), Path(sys.argv[2])
class Naive(Application):
    name = "Naive" + str(n)
app = Naive(env={{"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(work / f"naive-{{n}}.db")}})
naive_commands(app, n)  # as bench/run.py's baseline
"""

FOLD = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from ipledger.projections.scratch import fold_lines
n, work = int(sys.argv[1]), Path(sys.argv[2])
with open(work / "export.jsonl", "rb") as f:
    lines = [line for _, line in zip(range(n), f)]
fold_lines(lines, str(work / f"fold-{{n}}.db"))
"""

EXPORT = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.generator import generate
from ipledger.service import Ledger
events, work = int(sys.argv[1]), Path(sys.argv[2])
source = Ledger(f"sqlite:///{{work}}/source.db")
source.import_lines(list(generate(events)))
with open(work / "export.jsonl", "wb") as f:
    for line in source.export():
        f.write(line + b"\\n")
"""


def instructions(code: str, n: int, work: Path) -> int:
    """User-space instructions of one child running `code` for `n` units (callgrind)."""
    out = work / f"callgrind-{n}.out"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", code, str(n), str(work)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(done.stderr[-2000:])
    out.unlink(missing_ok=True)
    return int(found.group(1).replace(",", ""))


def per_unit(code: str, small: int, large: int, work: Path) -> float:
    """Instructions a unit: the difference between a large and a small run, per unit."""
    return (instructions(code, large, work) - instructions(code, small, work)) / (large - small)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=600, help="commands in the large run (a third in the small)")
    parser.add_argument("--fold", action="store_true", help="also a restore's fold, per export line")
    parser.add_argument("--lines", type=int, default=15_000, help="export lines in the fold's large run")
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    root = str(ROOT)  # for `bench`; `ipledger` is the installed (editable) package, as bench/run.py has it
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="ipledger-instructions-") as folder:
        work = Path(folder)
        large, small = options.commands, options.commands // 3
        ours = per_unit(OURS.format(root=root), small, large, work)
        naive = per_unit(NAIVE.format(root=root), small, large, work)
        rows.append(("interactive command (SQLite), ipledger", f"{ours:,.0f}"))
        rows.append(("the same, naive eventsourcing", f"{naive:,.0f} (ours {ours / naive:.2f}×)"))
        if options.fold:
            export = [sys.executable, "-c", EXPORT.format(root=root), str(options.lines * 2), str(work)]
            subprocess.run(export, check=True, cwd=ROOT)
            fold = per_unit(FOLD.format(root=root), options.lines // 3, options.lines, work)
            rows.append(("a restore's fold, per export line", f"{fold:,.0f}"))
    print("| unit | instructions (callgrind, user space) |\n|---|---|")
    for unit, figure in rows:
        print(f"| {unit} | {figure} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
