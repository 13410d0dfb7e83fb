"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, Ed25519 keys.

Formats (shared/spec/proofs.md; C2SP signed-note and tlog-checkpoint, as Go's
golang.org/x/mod/sumdb/note reads them):

* checkpoint body: `<origin>\\n<tree size>\\n<base64 root hash>\\n`;
* note: body, a blank line, then `— <key name> <base64(key id ‖ Ed25519 signature)>\\n`
  (em dash U+2014), the signature over the body's UTF-8 bytes;
* key id: the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key) (0x01: Ed25519);
* verifier key: `<name>+<key id, 8 hex digits>+<base64(0x01 ‖ public key)>`;
* private key file: `PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ 32-byte seed)>`, the
  form Go's `note.NewSigner` reads, so the key works with other signed-note tools.

Everything here is offline: `audit check` runs it with no store at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from ipledger.domain.errors import IntegrityError, InvalidInput
from ipledger.ledger import merkle

ED25519 = b"\x01"
DASH = "\u2014"
MAX_SIZE = 2**63 - 1
HEX64 = re.compile(r"[0-9a-f]{64}")
DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


def check_name(name: str, field: str) -> str:
    """A key name or origin: non-empty, printable, no white space and no '+' (C2SP signed-note)."""
    if not name or len(name) > 255 or not name.isprintable() or any(ch.isspace() or ch == "+" for ch in name):
        raise InvalidInput(f"{field}: {name!r} is not a name: 1-255 printable characters, no spaces, no '+'")
    return name


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InvalidInput(f"{field}: {text[:40]!r} is not base64") from None


@dataclass(frozen=True)
class Verifier:
    """A public key as a signed-note verifier key names it."""

    name: str
    key_id: bytes
    public: bytes

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)  # base64 has '+' too; a name has none
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise InvalidInput(f"key: {text[:60]!r} is not a verifier key (NAME+KEYID+BASE64, from 'audit keygen')")
        name = check_name(parts[0], "key")
        raw = _unb64(parts[2], "key")
        if len(raw) != 33 or raw[:1] != ED25519:
            raise InvalidInput("key: not an Ed25519 verifier key (algorithm byte 0x01 and 32 bytes)")
        if key_id(name, raw[1:]).hex() != parts[1]:
            raise InvalidInput(f"key: the key id {parts[1]} does not match the name and public key")
        return cls(name, bytes.fromhex(parts[1]), raw[1:])

    def text(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(ED25519 + self.public)}"

    def verifies(self, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            return False


@dataclass(frozen=True)
class Signer:
    """A private key (its 32-byte Ed25519 seed) and the name it signs as."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        import os

        return cls(check_name(name, "name"), os.urandom(32))

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not re.fullmatch(r"[0-9a-f]{8}", parts[3]):
            raise InvalidInput("key: the signing key file is not a PRIVATE+KEY+NAME+KEYID+BASE64 key ('audit keygen')")
        raw = _unb64(parts[4], "key")
        if len(raw) != 33 or raw[:1] != ED25519:
            raise InvalidInput("key: the signing key is not an Ed25519 key (algorithm byte 0x01 and a 32-byte seed)")
        signer = cls(check_name(parts[2], "key"), raw[1:])
        if signer.verifier().key_id.hex() != parts[3]:
            raise InvalidInput(f"key: the signing key's id {parts[3]} does not match its name and key")
        return signer

    def _key(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.seed)

    def verifier(self) -> Verifier:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public = self._key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, key_id(self.name, public), public)

    def text(self) -> str:
        return f"PRIVATE+KEY+{self.name}+{self.verifier().key_id.hex()}+{_b64(ED25519 + self.seed)}"

    def sign(self, body: str) -> str:
        """The signed note of `body` (which ends in a newline)."""
        signature = self._key().sign(body.encode())
        return f"{body}\n{DASH} {self.name} {_b64(self.verifier().key_id + signature)}\n"


def write_key_file(path: str, text: str) -> None:
    """A private key file readable by its owner only, never written over an existing file."""
    import os

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"out: {path} exists; a key file is never overwritten") from None
    except OSError as e:
        raise InvalidInput(f"out: cannot create {path} ({e.strerror})") from None
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    note: str

    def doc(self) -> dict[str, Any]:
        return {"checkpoint": self.note, "size": self.size, "root_hash": self.root.hex()}


def body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{_b64(root)}\n"


def sign_checkpoint(signer: Signer, origin: str, size: int, root: bytes) -> Checkpoint:
    return Checkpoint(origin, size, root, signer.sign(body(origin, size, root)))


def open_checkpoint(note: str, verifier: Verifier, field: str = "checkpoint") -> Checkpoint:
    """Parse a signed checkpoint and check it carries `verifier`'s signature.

    A text that is not a checkpoint at all is InvalidInput (exit 2); a checkpoint without
    a valid signature by that key is IntegrityError (exit 4)."""
    text, signatures = _split_note(note, field)
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not lines[0] or not DECIMAL.fullmatch(lines[1]):
        raise InvalidInput(f"{field}: not a checkpoint (origin, tree size in decimal, base64 root hash)")
    root = _unb64(lines[2], field)
    if len(root) != merkle.HASH_SIZE:
        raise InvalidInput(f"{field}: the root hash is not 32 bytes")
    _check_signature(text, signatures, verifier, field)
    return Checkpoint(lines[0], int(lines[1]), root, note)


def open_note(note: str, verifier: Verifier, field: str = "note") -> str:
    """The text of any signed note that carries `verifier`'s valid signature."""
    text, signatures = _split_note(note, field)
    _check_signature(text, signatures, verifier, field)
    return text


def _split_note(note: str, field: str) -> tuple[str, list[str]]:
    """The signed text (ending in its newline) and the signature lines; the text ends at
    the note's last blank line, as Go's note.Open splits it."""
    text, cut, signatures = note.rpartition("\n\n")
    if not cut or not signatures.endswith("\n") or "\n\n" in signatures:
        raise InvalidInput(f"{field}: not a signed note (text, a blank line, then signature lines)")
    return text + "\n", signatures[:-1].split("\n")


def _check_signature(text: str, signatures: list[str], verifier: Verifier, field: str) -> None:
    """The first signature line of the verifier's name and key id decides (Go's note.Open);
    lines of other keys are skipped."""
    for line in signatures:
        m = re.fullmatch(f"{DASH} (\\S+) (\\S+)", line)
        if m is None:
            raise InvalidInput(f"{field}: {line[:60]!r} is not a signature line ('{DASH} NAME BASE64')")
        raw = _unb64(m.group(2), field)
        if m.group(1) == verifier.name and raw[:4] == verifier.key_id:
            if len(raw) == 68 and verifier.verifies(text.encode(), raw[4:]):
                return
            raise IntegrityError(f"{field}: the signature by {verifier.name} does not verify (note altered or forged)")
    raise IntegrityError(f"{field}: not signed by the key {verifier.name}+{verifier.key_id.hex()}")


# --------------------------------------------------------------------------- proofs as JSON

INCLUSION_KEYS = {"tree_size", "leaf_index", "leaf_hash", "root_hash", "path"}
CONSISTENCY_KEYS = {"from_size", "to_size", "from_root", "to_root", "path"}


def inclusion_doc(index: int, size: int, leaf: bytes, root: bytes, path: list[bytes]) -> dict[str, Any]:
    return {"tree_size": size, "leaf_index": index, "leaf_hash": leaf.hex(), "root_hash": root.hex(),
            "path": [p.hex() for p in path]}  # fmt: skip


def consistency_doc(
    first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]
) -> dict[str, Any]:
    return {"from_size": first, "to_size": second, "from_root": first_root.hex(), "to_root": second_root.hex(),
            "path": [p.hex() for p in path]}  # fmt: skip


def parse_proof(text: str) -> dict[str, Any]:
    """An inclusion or consistency proof as `audit prove --json` prints it, checked field by field."""
    import json

    try:
        doc = json.loads(text)
    except ValueError:
        raise InvalidInput("proof: not a JSON document") from None
    if not isinstance(doc, dict) or set(doc) not in (INCLUSION_KEYS, CONSISTENCY_KEYS):
        raise InvalidInput(
            f"proof: an object with keys {sorted(INCLUSION_KEYS)} or {sorted(CONSISTENCY_KEYS)} ('audit prove --json')"
        )
    for key, value in doc.items():
        if key == "path":
            if not isinstance(value, list) or not all(isinstance(h, str) and HEX64.fullmatch(h) for h in value):
                raise InvalidInput("proof: path is a list of 64-digit lowercase hex hashes")
            if len(value) > 128:
                raise InvalidInput("proof: path has more than 128 hashes")
        elif key.endswith(("_size", "_index")):
            if type(value) is not int or not 0 <= value <= MAX_SIZE:
                raise InvalidInput(f"proof: {key} is a whole number ≥ 0")
        elif not isinstance(value, str) or not HEX64.fullmatch(value):
            raise InvalidInput(f"proof: {key} is a 64-digit lowercase hex hash")
    return doc


def _path(doc: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(h) for h in doc["path"]]


def check_inclusion(checkpoint: Checkpoint, proof: dict[str, Any], leaf: bytes | None) -> None:
    """The proof is for the checkpoint's tree, proves its leaf hash there, and (given the
    leaf itself, an export line) that hash is the leaf's."""
    if "leaf_index" not in proof:
        raise InvalidInput("proof: --leaf needs an inclusion proof ('audit prove --position N')")
    if (proof["tree_size"], proof["root_hash"]) != (checkpoint.size, checkpoint.root.hex()):
        raise IntegrityError(
            f"proof: it is for the tree of size {proof['tree_size']} with root {proof['root_hash']}, not the "
            f"checkpoint's (size {checkpoint.size}, root {checkpoint.root.hex()})"
        )
    leaf_hash = bytes.fromhex(proof["leaf_hash"])
    if leaf is not None and merkle.leaf_hash(leaf) != leaf_hash:
        raise IntegrityError("leaf: the event is not the one the proof is for (its leaf hash differs)")
    if not merkle.verify_inclusion(proof["leaf_index"], checkpoint.size, leaf_hash, _path(proof), checkpoint.root):
        raise IntegrityError(
            f"proof: leaf {proof['leaf_index']} is not in the checkpoint's tree of size {checkpoint.size} "
            "(the inclusion proof does not verify)"
        )


def check_consistency(checkpoint: Checkpoint, proof: dict[str, Any], previous: Checkpoint | None) -> None:
    """The proof leads from the previous checkpoint's tree (or the one it names) to this one's."""
    if "from_size" not in proof:
        raise InvalidInput("proof: --previous needs a consistency proof ('audit prove --from S1 --to S2')")
    if (proof["to_size"], proof["to_root"]) != (checkpoint.size, checkpoint.root.hex()):
        raise IntegrityError(
            f"proof: it leads to the tree of size {proof['to_size']}, not the checkpoint's (size {checkpoint.size}, "
            f"root {checkpoint.root.hex()})"
        )
    if previous is not None and proof["from_size"] != previous.size:
        raise IntegrityError(
            f"proof: it starts from the tree of size {proof['from_size']}, not the previous checkpoint's "
            f"{previous.size}"
        )
    if previous is not None and proof["from_root"] != previous.root.hex():
        raise IntegrityError(
            f"proof: the log's tree of size {previous.size} has root {proof['from_root']}, not the previous "
            f"checkpoint's {previous.root.hex()}: history was rewritten"
        )
    if not merkle.verify_consistency(
        proof["from_size"], checkpoint.size, bytes.fromhex(proof["from_root"]), checkpoint.root, _path(proof)
    ):
        raise IntegrityError(
            f"proof: the tree of size {proof['from_size']} is not a prefix of the checkpoint's tree of size "
            f"{checkpoint.size} (the consistency proof does not verify: history was rewritten)"
        )


def check(
    note: str, vkey: str, proof: str | None = None, leaf: bytes | None = None, previous: str | None = None
) -> dict[str, Any]:
    """`ipledger audit check`: offline, from files only. Raises IntegrityError (exit 4) if
    anything does not verify, InvalidInput (exit 2) for what is not well formed."""
    verifier = Verifier.parse(vkey)
    if leaf is not None and previous is not None:
        raise InvalidInput("leaf: give --leaf (with an inclusion proof) or --previous (with a consistency proof)")
    if leaf is not None and proof is None:
        raise InvalidInput("proof: --leaf needs --proof FILE, an inclusion proof ('audit prove --position N')")
    checkpoint = open_checkpoint(note, verifier)
    checked = ["signature"]
    earlier = None if previous is None else open_checkpoint(previous, verifier, "previous")
    if earlier is not None:
        if earlier.origin != checkpoint.origin:
            raise IntegrityError(f"previous: it is a checkpoint of {earlier.origin!r}, not of {checkpoint.origin!r}")
        if earlier.size > checkpoint.size:
            raise IntegrityError(
                f"previous: its tree (size {earlier.size}) is larger than the checkpoint's ({checkpoint.size}); "
                "the log shrank (truncated?)"
            )
        if proof is None:
            if earlier.size != checkpoint.size:
                raise InvalidInput(
                    f"proof: a consistency proof from size {earlier.size} to {checkpoint.size} is needed "
                    f"('audit prove --from {earlier.size} --to {checkpoint.size} --json')"
                )
            if earlier.root != checkpoint.root:
                raise IntegrityError(
                    f"previous: two checkpoints of size {checkpoint.size} with different roots (a fork)"
                )
            checked.append("consistency")
    if proof is not None:
        doc = parse_proof(proof)
        if leaf is not None or (earlier is None and "leaf_index" in doc):
            leaf = leaf[:-1] if leaf is not None and leaf.endswith(b"\n") else leaf  # a line as cut from a file
            check_inclusion(checkpoint, doc, leaf)
            checked.append("inclusion" if leaf is None else "inclusion of the leaf")
        else:
            check_consistency(checkpoint, doc, earlier)
            checked.append("consistency")
    return {"ok": True, "origin": checkpoint.origin, "size": checkpoint.size, "root_hash": checkpoint.root.hex(),
            "key": verifier.text(), "checked": checked}  # fmt: skip
