"""The OEMs x releases status matrix customer-success staff read (``release-train status``).

One word per cell, the most advanced state wins: ``installed`` (the instance runs
this release or a later one), ``failed`` (its delivery failed or was rolled back),
``rejected`` (a rejection blocks a change), ``approved`` (every change approved),
``pending`` (asked, not all approved), ``-`` (nothing asked or delivered); each change's
state is what the OEM's sign-off policy makes of its approvers' decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.models import DeliveryStatus
from release_pipeline.signoff_policy import DEFAULT_POLICY, SignoffPolicy, verdict

INSTALLED, FAILED, REJECTED, APPROVED, PENDING, NONE = "installed", "failed", "rejected", "approved", "pending", "-"
_FAILED_DELIVERIES = {DeliveryStatus.FAILED, DeliveryStatus.ROLLED_BACK}
_INSTALLED_DELIVERIES = {DeliveryStatus.INSTALLED, DeliveryStatus.NOOP}


@dataclass(frozen=True)
class StatusMatrix:
    releases: list[str]
    cells: dict[str, dict[str, str]]  # oem id -> release id -> state

    def rows(self) -> list[dict[str, str]]:
        """One flat row per OEM, for a table."""
        return [{"oem": oem, **states} for oem, states in self.cells.items()]

    def as_json(self) -> dict:
        return {"releases": self.releases, "oems": self.cells}


def status_matrix(
    repo: ReleaseRepository,
    oem_ids: Sequence[str],
    *,
    releases: Sequence[str] | None = None,
    last: int | None = None,
    policies: Mapping[str, SignoffPolicy] | None = None,
) -> StatusMatrix:
    """The matrix for ``oem_ids``; columns are the named releases, else every release
    something was asked or delivered for (the ``last`` ones when given). ``policies``:
    each OEM's sign-off policy (absent: the default)."""
    signoffs = signoff_states(repo, oem_ids, policies or {})
    deliveries = {(d.oem_id, d.release_id): d.status for d in repo.deliveries()}
    installed = {oem: row.release_id for oem, row in repo.installed_versions().items()}
    if releases is None:
        known = {release for _, release in signoffs} | {release for _, release in deliveries}
        known |= set(installed.values())
        releases = sorted(known)
        if last is not None:
            releases = releases[-last:] if last > 0 else []
    cells = {
        oem: {release: _cell(oem, release, signoffs, deliveries, installed) for release in releases} for oem in oem_ids
    }
    return StatusMatrix(releases=list(releases), cells=cells)


def _cell(oem: str, release: str, signoffs, deliveries, installed) -> str:
    delivery = deliveries.get((oem, release))
    if (installed.get(oem) or "") >= release or delivery in _INSTALLED_DELIVERIES:
        return INSTALLED
    if delivery in _FAILED_DELIVERIES:
        return FAILED
    return signoffs.get((oem, release), NONE)


def signoff_states(
    repo: ReleaseRepository, oem_ids: Sequence[str], policies: Mapping[str, SignoffPolicy]
) -> dict[tuple[str, str], str]:
    """(OEM, release) -> rejected / approved / pending, under each OEM's policy."""
    states: dict[tuple[str, str], str] = {}
    rows = repo.signoff_votes(oem_ids)
    for (oem, release), release_rows in groupby(rows, key=lambda r: (r.oem_id, r.release_id)):
        policy = policies.get(oem, DEFAULT_POLICY)
        changes = [verdict(policy, votes).state for _, votes in groupby(release_rows, key=lambda r: r.change_id)]
        states[(oem, release)] = (
            REJECTED if REJECTED in changes else APPROVED if all(c == APPROVED for c in changes) else PENDING
        )
    return states
