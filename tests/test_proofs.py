"""Proofs for auditors (issue 17, shared/spec/proofs.md) through the CLI, on a SQLite file
and on the PostgreSQL server: keys, signed checkpoints, inclusion and consistency proofs,
the offline checker, and each attack the issue names caught against an earlier checkpoint.

Everything an auditor would check is checked here with nothing but hashlib and
`cryptography` as well (the note's signature, the root from the export's lines), so the
product cannot agree with itself by mistake."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy_utils.types.uuid import UUIDType

from ipledger.domain.errors import IntegrityError
from ipledger.ledger.chain import GENESIS, chain_hash, export_line
from ipledger.ledger.checkpoints import Signer, Verifier, open_note
from ipledger.ledger.proofs import fill_tree
from tests.cli_helpers import assert_rejected, doc
from tests.conftest import MEMBERS, PATENT, PATENT_2, Cli
from tests.test_merkle import ref_mth, ref_path, ref_proof

ORIGIN = "exchange.example/ipledger"


@dataclass
class Auditor:
    """A ledger with a signing key, as the operator runs it and an auditor checks it."""

    run: Cli
    folder: Path
    key: Path
    vkey: str

    def write(self, name: str, content: str | bytes) -> str:
        path = self.folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)

    def checkpoint(self, name: str) -> str:
        """Sign the tree head now; the note goes to a file, as an auditor receives it."""
        return self.write(name, self.run.ok("audit", "checkpoint", "--key", str(self.key)).stdout)

    def prove(self, name: str, *args: str) -> str:
        return self.write(name, self.run.ok("audit", "prove", *args, "--json").stdout)

    def check(self, checkpoint: str, *args: str) -> Result:
        return self.run("audit", "check", "--checkpoint", checkpoint, "--key", self.vkey, *args)

    def verify(self, checkpoint: str) -> Result:
        return self.run("audit", "verify", "--checkpoint", checkpoint, "--key", self.vkey)

    def lines(self) -> list[bytes]:
        return [line.encode() for line in self.run.export().splitlines()]

    def size(self, checkpoint: str) -> int:
        return int(Path(checkpoint).read_text().split("\n")[1])


def populate(run: Cli) -> None:
    """A dozen events of a small market: members, two patents, a licence, a pledge."""
    for mid, name, kind in MEMBERS:
        run.ok("member", "add", mid, "--name", name, "--kind", kind, "--country", "CN")
    run.ok("asset", "register", PATENT, "--title", "Electrode coating", "--owner", "fudan-univ",
           "--effective", "2019-05-10")  # fmt: skip
    run.ok("asset", "register", PATENT_2, "--title", "Separator", "--owner", "sjtu", "--effective", "2020-01-15")
    run.ok(*f"licence grant {PATENT_2} --licensee byd --type non_exclusive --territory CN --field batteries".split(),
           *"--start 2026-03-02 --end 2030-03-02 --id LIC-1".split())  # fmt: skip
    run.ok(*f"pledge register {PATENT} --pledgee icbc-sh --amount 5000000.00 --currency CNY".split(),
           *"--end 2030-12-31 --id P-1".split())  # fmt: skip


def grow(run: Cli, count: int) -> None:
    for i in range(count):
        run.ok("asset", "register", f"CN/patent/ZL20231{i:07d}.1", "--title", f"Later {i}", "--owner", "zte")


#: The CLI's rules and formats are the same on every store: these run on SQLite only (suite time).
SQLITE_ONLY = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


@pytest.fixture
def auditor(store_url: str, tmp_path: Path) -> Auditor:
    run = Cli(store_url)
    run.ok("init", "--origin", ORIGIN)
    populate(run)
    key = tmp_path / "operator.key"
    vkey = run.ok("audit", "keygen", "--name", "exchange.example", "--out", str(key)).stdout.strip()
    return Auditor(run, tmp_path, key, vkey)


# --------------------------------------------------------------------------- keys


def test_keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_verifier_key(tmp_path: Path) -> None:
    run = Cli(f"sqlite:///{tmp_path}/unused.db")
    out = tmp_path / "k.key"
    d = doc(run("audit", "keygen", "--name", "exchange.example", "--out", str(out), "--json"))
    assert set(d) == {"name", "vkey", "public_key"} and d["name"] == "exchange.example"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    public = base64.b64decode(d["public_key"])
    key_id = hashlib.sha256(b"exchange.example\n\x01" + public).digest()[:4]
    key_b64 = base64.b64encode(b"\x01" + public).decode()
    assert d["vkey"] == f"exchange.example+{key_id.hex()}+{key_b64}"
    assert out.read_text().startswith(f"PRIVATE+KEY+exchange.example+{key_id.hex()}+")
    assert not (tmp_path / "unused.db").exists()  # no store needed


def test_keygen_never_overwrites_a_file(tmp_path: Path) -> None:
    run = Cli(f"sqlite:///{tmp_path}/unused.db")
    out = tmp_path / "k.key"
    out.write_text("precious")
    result = run("audit", "keygen", "--name", "op", "--out", str(out))
    assert result.exit_code == 2 and result.stderr.startswith("error: InvalidInput: out: ")
    assert out.read_text() == "precious"


@pytest.mark.parametrize("name", ["has space", "a+b", ""])
def test_keygen_refuses_a_name_signed_notes_cannot_carry(tmp_path: Path, name: str) -> None:
    result = Cli(f"sqlite:///{tmp_path}/unused.db")("audit", "keygen", "--name", name, "--out", str(tmp_path / "k"))
    assert result.exit_code == 2 and result.stderr.startswith("error: InvalidInput: name: ")
    assert not (tmp_path / "k").exists()


# --------------------------------------------------------------------------- checkpoints

# The example in the Go reference implementation's documentation (golang.org/x/mod/sumdb/note).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIGNATURE = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
GO_NOTE = f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIGNATURE}\n"


def test_keys_and_notes_are_byte_for_byte_those_of_gos_signed_note_package() -> None:
    signer = Signer.parse(GO_SKEY)
    assert signer.text() == GO_SKEY
    assert signer.verifier().text() == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE  # Ed25519 is deterministic
    assert open_note(GO_NOTE, Verifier.parse(GO_VKEY)) == GO_TEXT
    with pytest.raises(IntegrityError):
        open_note(GO_NOTE.replace("problem is", "problem was"), Verifier.parse(GO_VKEY))


def test_a_checkpoint_is_a_c2sp_signed_note_over_the_rfc_root_of_the_export(auditor: Auditor) -> None:
    d = doc(auditor.run("audit", "checkpoint", "--key", str(auditor.key), "--json"))
    assert set(d) == {"checkpoint", "size", "root_hash"}
    lines = auditor.lines()
    root = ref_mth(lines)
    assert (d["size"], d["root_hash"]) == (len(lines), root.hex())
    m = re.fullmatch(r"(([^\n]+)\n(\d+)\n([A-Za-z0-9+/=]+)\n)\n\u2014 (\S+) ([A-Za-z0-9+/=]+)\n", d["checkpoint"])
    assert m is not None, d["checkpoint"]
    body, origin, size, b64root, name, b64sig = m.groups()
    assert (origin, int(size), base64.b64decode(b64root), name) == (ORIGIN, len(lines), root, "exchange.example")
    signature = base64.b64decode(b64sig)
    name_, key_hex, key_b64 = auditor.vkey.split("+", 2)
    assert signature[:4].hex() == key_hex and len(signature) == 68
    Ed25519PublicKey.from_public_bytes(base64.b64decode(key_b64)[1:]).verify(signature[4:], body.encode())
    kept = doc(auditor.run("audit", "checkpoints", "--json"))["checkpoints"]
    assert [(c["size"], c["root_hash"], c["checkpoint"]) for c in kept] == [
        (d["size"], d["root_hash"], d["checkpoint"])
    ]


@SQLITE_ONLY
def test_the_signing_key_comes_from_the_environment_too(auditor: Auditor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPLEDGER_SIGNING_KEY", str(auditor.key))
    note = auditor.run.ok("audit", "checkpoint").stdout
    assert auditor.check(auditor.write("c.txt", note)).exit_code == 0


@SQLITE_ONLY
def test_a_checkpoint_needs_a_key(auditor: Auditor) -> None:
    result = auditor.run("audit", "checkpoint")
    assert result.exit_code == 2 and "IPLEDGER_SIGNING_KEY" in result.stderr


@SQLITE_ONLY
def test_a_file_that_is_not_a_signing_key_is_refused(auditor: Auditor) -> None:
    result = auditor.run("audit", "checkpoint", "--key", auditor.write("bad.key", "not a key"))
    assert result.exit_code == 2 and result.stderr.startswith("error: InvalidInput: key: ")
    assert doc(auditor.run("audit", "checkpoints", "--json")) == {"checkpoints": []}


@SQLITE_ONLY
def test_only_the_operator_signs_checkpoints(auditor: Auditor) -> None:
    result = auditor.run("audit", "checkpoint", "--key", str(auditor.key), actor="auditor")
    assert result.exit_code == 1 and result.stderr.startswith("error: NotAuthorised: actor: ")


@SQLITE_ONLY
def test_the_origin_is_fixed_once_a_checkpoint_is_signed(auditor: Auditor) -> None:
    auditor.run.ok("init", "--origin", "renamed.example/log")  # no checkpoint yet: a rename is fine
    assert doc(auditor.run("init", "--json"))["origin"] == "renamed.example/log"
    auditor.checkpoint("c.txt")
    result = auditor.run("init", "--origin", "again.example/log")
    assert result.exit_code == 2 and result.stderr.startswith("error: InvalidInput: origin: ")
    assert doc(auditor.run("init", "--json"))["origin"] == "renamed.example/log"


def test_export_keeps_its_lines_and_exports_the_checkpoints_beside_them(auditor: Auditor) -> None:
    before = auditor.run.export()
    first = auditor.checkpoint("c1.txt")
    grow(auditor.run, 2)
    second = auditor.checkpoint("c2.txt")
    assert auditor.run.export().startswith(before)  # checkpoints add no event: the leaves are the lines
    kept = [json.loads(line) for line in auditor.run.ok("export", "--checkpoints").stdout.splitlines()]
    assert [c["checkpoint"] for c in kept] == [Path(first).read_text(), Path(second).read_text()]
    until = auditor.size(first)
    assert len(auditor.run.ok("export", "--checkpoints", "--until", str(until)).stdout.splitlines()) == 1


# --------------------------------------------------------------------------- proofs and the offline check


def test_an_event_is_proved_to_a_court_from_the_checkpoint_alone(auditor: Auditor) -> None:
    checkpoint = auditor.checkpoint("c.txt")
    lines = auditor.lines()
    position = 9  # the first patent's registration
    proof = json.loads(Path(auditor.prove("p.json", "--position", str(position))).read_text())
    assert proof == {
        "tree_size": len(lines),
        "leaf_index": position - 1,
        "leaf_hash": hashlib.sha256(b"\x00" + lines[position - 1]).hexdigest(),
        "root_hash": ref_mth(lines).hex(),
        "path": [h.hex() for h in ref_path(position - 1, lines)],
    }
    leaf = auditor.write("leaf.jsonl", lines[position - 1] + b"\n")
    offline = Cli("sqlite:////nonexistent/folder/never.db")  # no store: a court's laptop
    result = offline("audit", "check", "--checkpoint", checkpoint, "--key", auditor.vkey,
                     "--proof", str(auditor.folder / "p.json"), "--leaf", leaf, "--json")  # fmt: skip
    assert doc(result) == {
        "ok": True, "origin": ORIGIN, "size": len(lines), "root_hash": ref_mth(lines).hex(), "key": auditor.vkey,
        "checked": ["signature", "inclusion of the leaf"],
    }  # fmt: skip


@SQLITE_ONLY
def test_another_event_does_not_pass_for_the_proved_one(auditor: Auditor) -> None:
    checkpoint = auditor.checkpoint("c.txt")
    proof = auditor.prove("p.json", "--position", "9")
    other = auditor.write("other.jsonl", auditor.lines()[9])
    result = auditor.check(checkpoint, "--proof", proof, "--leaf", other)
    assert result.exit_code == 4 and result.stderr.startswith("error: IntegrityError: leaf: ")


def test_a_proof_for_another_tree_is_refused(auditor: Auditor) -> None:
    checkpoint = auditor.checkpoint("c.txt")
    grow(auditor.run, 1)
    proof = auditor.prove("p.json", "--position", "3", "--size", str(auditor.size(checkpoint) + 1))
    result = auditor.check(checkpoint, "--proof", proof)
    assert result.exit_code == 4 and result.stderr.startswith("error: IntegrityError: proof: ")


@SQLITE_ONLY
def test_an_altered_path_fails_the_check(auditor: Auditor) -> None:
    checkpoint = auditor.checkpoint("c.txt")
    proof = json.loads(Path(auditor.prove("p.json", "--position", "5")).read_text())
    proof["path"][1] = "0" * 64
    result = auditor.check(checkpoint, "--proof", auditor.write("bad.json", json.dumps(proof)))
    assert result.exit_code == 4 and "does not verify" in result.stderr


def test_the_next_days_checkpoint_is_checked_against_yesterdays_in_log_n(auditor: Auditor) -> None:
    monday = auditor.checkpoint("monday.txt")
    grow(auditor.run, 5)
    tuesday = auditor.checkpoint("tuesday.txt")
    first, second = auditor.size(monday), auditor.size(tuesday)
    proof = json.loads(Path(auditor.prove("c.json", "--from", str(first))).read_text())  # --to: the latest checkpoint
    lines = auditor.lines()
    assert proof == {"from_size": first, "to_size": second, "from_root": ref_mth(lines[:first]).hex(),
                     "to_root": ref_mth(lines).hex(), "path": [h.hex() for h in ref_proof(first, lines)]}  # fmt: skip
    result = auditor.check(tuesday, "--previous", monday, "--proof", str(auditor.folder / "c.json"), "--json")
    assert doc(result)["checked"] == ["signature", "consistency"]
    assert auditor.verify(monday).exit_code == 0


@SQLITE_ONLY
def test_a_consistency_proof_is_needed_between_different_sizes(auditor: Auditor) -> None:
    monday = auditor.checkpoint("monday.txt")
    grow(auditor.run, 1)
    tuesday = auditor.checkpoint("tuesday.txt")
    result = auditor.check(tuesday, "--previous", monday)
    assert result.exit_code == 2 and "audit prove --from" in result.stderr


BAD_PROOF_REQUESTS = [
    (["--position", "999"], "position: "),
    (["--position", "0"], "position: "),
    (["--position", "3", "--size", "999"], "size: "),
    (["--position", "3", "--size", "-1"], "size: "),
    (["--from", "5", "--to", "3"], "from: "),
    (["--from", "3", "--to", "999"], "to: "),
    (["--position", "3", "--from", "2"], ""),
    (["--position", "3", "--to", "4"], ""),
    ([], ""),
    (["--position", "x"], ""),
    (["--position", "\u0663"], ""),  # an Arabic-Indic three is not an ASCII number
]


def test_bad_proof_requests_are_one_line_errors_naming_the_option(auditor: Auditor) -> None:
    auditor.checkpoint("c.txt")
    before = auditor.run.export()
    for args, field in BAD_PROOF_REQUESTS:
        message = assert_rejected(auditor.run, before, auditor.run("audit", "prove", *args), 2, "InvalidInput")
        assert message.startswith(field), (args, message)


@SQLITE_ONLY
def test_a_proof_without_a_size_needs_a_checkpoint(auditor: Auditor) -> None:
    result = auditor.run("audit", "prove", "--position", "3")
    assert result.exit_code == 1 and result.stderr.startswith("error: NotFound: size: no checkpoint")
    assert doc(auditor.run("audit", "prove", "--position", "3", "--size", "5", "--json"))["tree_size"] == 5


@SQLITE_ONLY
def test_the_check_refuses_what_is_not_well_formed_with_exit_2(auditor: Auditor) -> None:
    checkpoint = auditor.checkpoint("c.txt")
    proof = auditor.prove("p.json", "--position", "2")
    cases = [
        (auditor.check(auditor.write("junk.txt", "hello\n")), "checkpoint: "),
        (auditor.run("audit", "check", "--checkpoint", checkpoint, "--key", "not-a-key"), "key: "),
        (auditor.check(checkpoint, "--proof", auditor.write("junk.json", "{}")), "proof: "),
        (auditor.check(checkpoint, "--proof", auditor.write("bad.json", '{"tree_size": 1.5}')), "proof: "),
        (auditor.check(checkpoint, "--leaf", proof), "proof: "),
        (auditor.check(checkpoint, "--proof", proof, "--leaf", proof, "--previous", checkpoint), "leaf: "),
        (auditor.check(str(auditor.folder / "missing.txt")), ""),
    ]
    for result, field in cases:
        assert result.exit_code == 2, (result.stdout, result.stderr)
        assert result.stderr.startswith(f"error: InvalidInput: {field}") and result.stderr.count("\n") == 1


@SQLITE_ONLY
def test_a_checkpoint_with_an_altered_size_or_another_key_fails_with_exit_4(auditor: Auditor) -> None:
    note = Path(auditor.checkpoint("c.txt")).read_text()
    origin, size, rest = note.split("\n", 2)
    altered = auditor.check(auditor.write("altered.txt", f"{origin}\n{int(size) + 1}\n{rest}"))
    assert altered.exit_code == 4 and "does not verify" in altered.stderr
    other_key = auditor.run.ok("audit", "keygen", "--name", "exchange.example", "--out",
                               str(auditor.folder / "other.key")).stdout.strip()  # fmt: skip
    other = auditor.run("audit", "check", "--checkpoint", str(auditor.folder / "c.txt"), "--key", other_key)
    assert other.exit_code == 4 and "not signed by the key" in other.stderr


# --------------------------------------------------------------------------- the attacks (issue 17, "Done when")

EVENTS = sa.Table(
    "ipledger_events",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("originator_id", UUIDType()),
    sa.Column("originator_version", sa.BigInteger),
    sa.Column("topic", sa.Text),
    sa.Column("state", sa.LargeBinary),
)


@pytest.fixture
def store(auditor: Auditor) -> Iterator[sa.Engine]:
    """The store itself, behind the ledger's back (an attacker with database access)."""
    engine = sa.create_engine(auditor.run.db)
    yield engine
    engine.dispose()


def rechain(conn: sa.Connection, start: int) -> None:
    """Recompute the hash chain from `start` on, exactly as the recorder would."""
    prev = conn.execute(sa.text("SELECT hash FROM ipledger_chain WHERE position < :p ORDER BY position DESC LIMIT 1"),
                        {"p": start}).scalar() or GENESIS  # fmt: skip
    for r in conn.execute(sa.select(EVENTS).where(EVENTS.c.id >= start).order_by(EVENTS.c.id)).all():
        prev = chain_hash(prev, r.id, str(r.originator_id), r.originator_version, r.topic, bytes(r.state))
        conn.execute(sa.text("DELETE FROM ipledger_chain WHERE position = :p"), {"p": r.id})
        conn.execute(sa.text("INSERT INTO ipledger_chain (position, hash) VALUES (:p, :h)"), {"p": r.id, "h": prev})


def forge_append(conn: sa.Connection) -> bytes:
    """Append a forged event (a copy of the last, for a new aggregate) with a valid chain
    hash and a matching command record: `audit verify`'s chain walk cannot tell. Returns
    its export line."""
    last = conn.execute(sa.select(EVENTS).order_by(EVENTS.c.id.desc()).limit(1)).one()
    state = orjson.loads(last.state)
    state["meta"]["command_id"] = "forged-1"
    forged = orjson.dumps(state)
    position = last.id + 1
    conn.execute(EVENTS.insert().values(id=position, originator_id=uuid.uuid4(), originator_version=1,
                                        topic=last.topic, state=forged))  # fmt: skip
    record = conn.execute(sa.text("SELECT command, outcome, digest FROM ipledger_commands WHERE position = :p"),
                          {"p": last.id}).one()  # fmt: skip
    conn.execute(
        sa.text("INSERT INTO ipledger_commands (command_id, command, outcome, position, digest) "
                "VALUES ('forged-1', :c, :o, :p, :d)"),
        {"c": record.command, "o": record.outcome, "p": position, "d": record.digest},
    )  # fmt: skip
    rechain(conn, position)
    link = conn.execute(sa.text("SELECT hash FROM ipledger_chain WHERE position = :p"), {"p": position}).scalar()
    row = conn.execute(sa.select(EVENTS).where(EVENTS.c.id == position)).one()
    return export_line(position, str(row.originator_id), 1, row.topic, bytes(row.state), link)


def rewrite(conn: sa.Connection, position: int) -> None:
    """Alter the event at `position` and recompute the chain from there on."""
    state = orjson.loads(conn.execute(sa.select(EVENTS.c.state).where(EVENTS.c.id == position)).scalar_one())
    state["timestamp"] = "2025-01-01T00:00:00Z"
    conn.execute(EVENTS.update().where(EVENTS.c.id == position).values(state=orjson.dumps(state)))
    rechain(conn, position)


def truncate(conn: sa.Connection, keep: int) -> None:
    """Drop every event after `keep`, with its chain link and command record."""
    for sql in ("DELETE FROM ipledger_events WHERE id > :k", "DELETE FROM ipledger_chain WHERE position > :k",
                "DELETE FROM ipledger_commands WHERE position > :k"):  # fmt: skip
        conn.execute(sa.text(sql), {"k": keep})


def reorder(conn: sa.Connection, a: int, b: int) -> None:
    """Swap two events' contents (and positions in the log), then recompute the chain."""
    ra, rb = (conn.execute(sa.select(EVENTS).where(EVENTS.c.id == p)).one() for p in (a, b))
    conn.execute(EVENTS.update().where(EVENTS.c.id == a).values(originator_id=uuid.uuid4()))
    for target, r in ((b, ra), (a, rb)):
        values = {"originator_id": r.originator_id, "originator_version": r.originator_version, "topic": r.topic}
        conn.execute(EVENTS.update().where(EVENTS.c.id == target).values(state=r.state, **values))
    rechain(conn, min(a, b))


def refuses(result: Result, *fragments: str) -> str:
    assert result.exit_code == 4, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error: IntegrityError: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr


def sign_after(auditor: Auditor, store: sa.Engine, earlier: str) -> tuple[str, str]:
    """The attacker rebuilt the tree from the altered log and the operator's key signed
    it: the new checkpoint and the consistency proof from the earlier one."""
    with store.begin() as conn:
        fill_tree(conn)
    later = auditor.checkpoint("later.txt")
    return later, auditor.prove("consistency.json", "--from", str(auditor.size(earlier)))


def refuses_consistency(auditor: Auditor, later: str, earlier: str, consistency: str) -> None:
    """The offline check refuses the later checkpoint: the operator's proof (from the
    rewritten tree) names another root for the earlier size, and the same proof made to
    claim the earlier root does not verify."""
    refuses(auditor.check(later, "--previous", earlier, "--proof", consistency), "history was rewritten")
    proof = json.loads(Path(consistency).read_text())
    proof["from_root"] = base64.b64decode(Path(earlier).read_text().split("\n")[2]).hex()
    claimed = auditor.write("claimed.json", json.dumps(proof))
    refuses(auditor.check(later, "--previous", earlier, "--proof", claimed), "does not verify: history was rewritten")


def test_a_forged_event_appended_behind_the_trees_back_is_caught(auditor: Auditor, store: sa.Engine) -> None:
    earlier = auditor.checkpoint("earlier.txt")
    with store.begin() as conn:
        forge_append(conn)
    assert auditor.run("audit", "verify").exit_code == 4
    refuses(auditor.verify(earlier), f"position {auditor.size(earlier) + 1}: event has no leaf")


def test_a_forged_event_appended_with_every_hash_recomputed_is_in_no_earlier_checkpoint(
    auditor: Auditor, store: sa.Engine
) -> None:
    """Appending is what a log is for: a forged event whose chain hash, command record and
    tree leaf were all recomputed extends the log like a true one (docs/audit.md says
    what catches it: it is in no checkpoint signed before it, so it proves nothing
    dated earlier)."""
    earlier = auditor.checkpoint("earlier.txt")
    with store.begin() as conn:
        forged = forge_append(conn)
    later, consistency = sign_after(auditor, store, earlier)
    assert auditor.check(later, "--previous", earlier, "--proof", consistency).exit_code == 0
    size = auditor.size(earlier)
    leaf = auditor.write("forged.jsonl", forged)
    proof = auditor.prove("forged.json", "--position", str(size + 1), "--size", str(size + 1))
    refuses(auditor.check(earlier, "--proof", proof, "--leaf", leaf), "proof: it is for the tree of size")
    genuine = auditor.prove("last.json", "--position", str(size), "--size", str(size))  # the forged line in its place
    refuses(auditor.check(earlier, "--proof", genuine, "--leaf", leaf), "leaf: ")
    result = auditor.run("audit", "prove", "--position", str(size + 1), "--size", str(size))
    assert result.exit_code == 2  # nothing proves it in the earlier tree


@pytest.mark.parametrize("where", ["first", "middle", "last signed"])
def test_a_rewrite_of_the_chain_from_any_position_is_caught_and_blamed_on_it(
    auditor: Auditor, store: sa.Engine, where: str
) -> None:
    earlier = auditor.checkpoint("earlier.txt")
    size = auditor.size(earlier)
    grow(auditor.run, 2)
    position = {"first": 1, "middle": size // 2, "last signed": size}[where]
    with store.begin() as conn:
        rewrite(conn, position)
    assert auditor.run.ok("audit", "digest")  # the chain itself is valid again
    refuses(auditor.verify(earlier), f"position {position}: event does not match its leaf")
    later, consistency = sign_after(auditor, store, earlier)  # the tree rebuilt over the rewrite, and signed
    refuses(auditor.verify(earlier), "checkpoint: the log's first")
    refuses_consistency(auditor, later, earlier, consistency)


def test_a_truncated_log_is_caught(auditor: Auditor, store: sa.Engine) -> None:
    earlier = auditor.checkpoint("earlier.txt")
    size = auditor.size(earlier)
    with store.begin() as conn:
        truncate(conn, size - 2)
    refuses(auditor.verify(earlier), f"position {size - 1}: the Merkle tree has a leaf for an event the log lacks")
    with store.begin() as conn:
        fill_tree(conn)
    refuses(auditor.verify(earlier), f"the log has {size - 2} events, fewer than the checkpoint's {size}")
    shorter = auditor.checkpoint("shorter.txt")
    refuses(auditor.check(shorter, "--previous", earlier), "the log shrank")


def test_a_truncated_log_grown_back_to_its_size_is_caught(auditor: Auditor, store: sa.Engine) -> None:
    earlier = auditor.checkpoint("earlier.txt")
    size = auditor.size(earlier)
    with store.begin() as conn:
        truncate(conn, size - 2)
        fill_tree(conn)
    grow(auditor.run, 3)  # the ledger writes on, over the gap
    refuses(auditor.verify(earlier), "checkpoint: the log's first")
    later = auditor.checkpoint("later.txt")
    consistency = auditor.prove("consistency.json", "--from", str(size))
    refuses_consistency(auditor, later, earlier, consistency)


def test_reordered_events_are_caught(auditor: Auditor, store: sa.Engine) -> None:
    earlier = auditor.checkpoint("earlier.txt")
    with store.begin() as conn:
        reorder(conn, 3, 4)
    refuses(auditor.verify(earlier), "position 3: ")
    later, consistency = sign_after(auditor, store, earlier)
    refuses(auditor.verify(earlier), "position 3: ")
    refuses_consistency(auditor, later, earlier, consistency)


@SQLITE_ONLY
def test_a_checkpoint_of_another_log_is_refused(auditor: Auditor, tmp_path: Path) -> None:
    other = Cli(f"sqlite:///{tmp_path}/other.db")
    other.ok("init", "--origin", "other.example/log")
    note = other.ok("audit", "checkpoint", "--key", str(auditor.key)).stdout
    refuses(auditor.verify(auditor.write("other.txt", note)), "other.example/log")


def test_an_import_grows_the_tree_as_commands_do(store_url: str) -> None:
    """Imports write through the same recorder path, many commands per transaction."""
    from bench.generator import generate
    from ipledger.ledger.proofs import Tree
    from ipledger.service import Ledger

    ledger = Ledger(store_url)
    ledger.import_lines(generate(700, 3))  # crosses the importer's 500-line transactions
    lines = [bytes(line) for line in ledger.export()]
    with ledger.exchange.engine.connect() as conn:
        assert Tree(conn).head() == (len(lines), ref_mth(lines))
    assert ledger.verify()["tree"] == {"size": len(lines), "root_hash": ref_mth(lines).hex()}
    ledger.close()


# --------------------------------------------------------------------------- a store from before the tree


def test_a_log_written_before_the_tree_is_provable_after_the_upgrade(auditor: Auditor, store: sa.Engine) -> None:
    from alembic import command

    from ipledger.ledger.schema import alembic_config

    lines = auditor.lines()
    with store.begin() as conn:
        command.downgrade(alembic_config(conn), "0004")
    assert "ipledger_tree_leaves" not in sa.inspect(store).get_table_names()
    checkpoint = auditor.checkpoint("c.txt")  # the first command upgrades the store and builds its tree
    assert doc(auditor.run("audit", "checkpoints", "--json"))["checkpoints"][0]["root_hash"] == ref_mth(lines).hex()
    proof = auditor.prove("p.json", "--position", "1")
    assert auditor.check(checkpoint, "--proof", proof, "--leaf", auditor.write("l", lines[0])).exit_code == 0
    grow(auditor.run, 1)
    assert auditor.verify(checkpoint).exit_code == 0
    auditor.run.ok("audit", "verify")
