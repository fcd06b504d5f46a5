"""The ledger: which changes a build holds, and which of them an instance newly runs.

A build is cut from main, so it holds everything merged before its cut. The rules
(README, "The ledger"):

- **L1 continuity.** A cut takes every change merged after the previous cut, up to its
  own. The previous cut is the newest recorded release's ``changes_until``, whatever
  became of that release (the baseline's for the first cut): releases never cut go into
  the next cut, and no merged change is outside a release.
- **L2 carry.** A release that does not reach production (QA rejected it, its deploy
  failed) carries its changes into the next one: they ship with the first production
  release at or after their own, their *carrier*, are listed in its notes as carried,
  and are asked for, gated and looked at again with it.
- **L3 what an instance runs.** An instance that gets R newly runs every change of the
  recorded releases in ``(running, R]``, whatever their status. That set, and nothing
  else, is what the OEM must approve before R.
- **L4 reverts.** A change and its revert that an instance would both newly run cancel
  out: neither is asked for, neither blocks, the notes list neither as shipped. A
  revert of a change the instance already runs is a change like any other.

Pure functions, so every rule is tested without a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

Shipped = TypeVar("Shipped")


def carrier(release_id: str, production: Iterable[str]) -> str | None:
    """The production release that ships the changes of ``release_id``: the first at or
    after it (None: none has reached production yet)."""
    return min((p for p in production if p >= release_id), default=None)


def cancelled(reverts: Mapping[str, str | None]) -> set[str]:
    """The changes that cancel out within one span (``{change_id: the change it reverts}``).

    A revert and the change it reverts cancel when both are in the span. A chain (C,
    revert of C, revert of that revert, ...) cancels in pairs from its root, as the
    merges did: after an even number the chain is gone, after an odd number its last
    change is what the code holds (a revert of a revert brings C back, so it is asked)."""
    reverted_by: dict[str, str] = {}
    for change_id, target in sorted(reverts.items()):
        if target is not None and target in reverts and target != change_id:
            reverted_by.setdefault(target, change_id)
    gone: set[str] = set()
    for root in sorted(set(reverts) - set(reverted_by.values())):
        chain = [root]
        while (following := reverted_by.get(chain[-1])) is not None and following not in chain:
            chain.append(following)
        gone.update(chain[: len(chain) - len(chain) % 2])
    return gone


def net(changes: Sequence[Shipped], *, key=lambda c: (c.id, c.reverts)) -> list[Shipped]:
    """``changes`` (one span, e.g. what an instance newly runs) without those that cancel out."""
    gone = cancelled(dict(key(c) for c in changes))
    return [c for c in changes if key(c)[0] not in gone]


def cut_since(previous_until: dt.datetime | None, calendar_previous: dt.datetime) -> dt.datetime:
    """Where a cut's span starts: the previous recorded cut's end (L1), or, with nothing
    recorded yet, the previous release of the calendar."""
    return previous_until if previous_until is not None else calendar_previous


def carried(release_id: str, origin_release_id: str | None) -> bool:
    """Whether a change listed with ``release_id`` was cut into an earlier release that
    never reached production."""
    return origin_release_id is not None and origin_release_id < release_id
