"""The OEMs x releases status matrix customer-success staff read (``release-train status``).

One word per cell, the most advanced state wins: ``installed`` (the instance runs
this release or a later one), ``failed`` (its delivery failed or was rolled back),
``rejected`` (a change's latest decision is a rejection), ``approved`` (every change
approved), ``pending`` (asked, not all decided), ``-`` (nothing asked or delivered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.models import DeliveryStatus

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
    repo: ReleaseRepository, oem_ids: Sequence[str], *, releases: Sequence[str] | None = None, last: int | None = None
) -> StatusMatrix:
    """The matrix for ``oem_ids``; columns are the named releases, else every release
    something was asked or delivered for (the ``last`` ones when given)."""
    signoffs = {(r.oem_id, r.release_id): r for r in repo.signoff_summary()}
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
    signoff = signoffs.get((oem, release))
    if signoff is None:
        return NONE
    if signoff.rejected:
        return REJECTED
    if signoff.approved == signoff.requested:
        return APPROVED
    return PENDING
