"""Named rejections.

Every rule the ledger enforces raises one of these *before* any event is stored.
The class name is the contract name printed by the CLI (`error: Name: message`),
and the message names the field and the rule so a person can fix the request.
"""

from __future__ import annotations


class LedgerError(Exception):
    """A command the ledger refuses. Exit code 1 unless a subclass says otherwise."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def name(self) -> str:
        return type(self).__name__


class InvalidInput(LedgerError):
    """Syntax or value of an input is wrong (bad ref, float amount, unknown currency)."""

    exit_code = 2


class NotFound(LedgerError):
    """What the command names does not exist."""


class DuplicateId(LedgerError):
    """A caller-chosen id (or natural key, like an asset ref) is already taken."""


class NotAuthorised(LedgerError):
    """The actor may not issue this command (auditors read only; members act for themselves)."""


class Unauthenticated(LedgerError):
    """An HTTP request without a valid token: missing, unknown, revoked or expired (401)."""


class MemberSuspended(LedgerError):
    """Only active members trade, license, pledge or receive rights."""


class NotOwner(LedgerError):
    """Only the owner (or the operator for it) may do this with the asset."""


class AssetPledged(LedgerError):
    """A pledged asset needs the pledgee's consent for this act."""


class NotPledgeable(LedgerError):
    """The law of the asset's jurisdiction does not let this kind of right be pledged
    (a CN patent application: only granted patents)."""


class PledgeBeyondExpiry(LedgerError):
    """The pledge's term runs past the right's expiry, which that jurisdiction refuses (CN)."""


class AssetReserved(LedgerError):
    """A pending trade or an open assignment listing holds the asset."""


class AssetExpired(LedgerError):
    """An expired asset cannot be listed, licensed or pledged."""


class ListingNotOpen(LedgerError):
    """The listing is not open for this (not yet open, past close, or ended)."""


class ListingStillOpen(LedgerError):
    """The listing cannot be closed before its closing time."""


class SelfDealing(LedgerError):
    """A seller may not bid on its own listing."""


class BidTooLow(LedgerError):
    """The bid does not meet the ask, the reserve or the minimum increment."""


class BidNotWithdrawable(LedgerError):
    """English-auction bids are binding."""


class TradeResolved(LedgerError):
    """A trade resolves exactly once (settled, voided or lapsed)."""


class LicenceConflict(LedgerError):
    """The grant overlaps a licence it cannot coexist with."""


class LicenceOutOfScope(LedgerError):
    """A sublicence must lie within its parent licence's scope."""


class ConsentMissing(LedgerError):
    """The act needs a consent that was not given."""


class InvalidState(LedgerError):
    """The object's current lifecycle state forbids the command (e.g. suspending a suspended member)."""


class ClockWentBackwards(LedgerError):
    """A pinned clock earlier than the last recorded event."""


class ClockAhead(LedgerError):
    """A pinned clock (or an import line's `at`) later than the wall clock plus the tolerance:
    one mistyped year would end every auction and lapse every trade, for good."""


class IdempotencyConflict(LedgerError):
    """A command id already names a different command (another command, arguments or actor)."""


class StoreUnavailable(LedgerError):
    """The store cannot be used: unknown driver, cannot connect, locked past the timeout."""

    exit_code = 5


class ConcurrentWrite(LedgerError):
    """Lost an optimistic-concurrency race after the bounded retries."""

    exit_code = 3


class IntegrityError(LedgerError):
    """The log or a projection fails verification."""

    exit_code = 4


class NotEligible(LedgerError):
    """The party cannot take this role (e.g. a pledgee that is not a financial institution)."""
