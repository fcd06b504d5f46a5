"""White-labelling: an OEM copy names the OEM's product, never the vendor's."""

from __future__ import annotations

import re
from dataclasses import dataclass

from release_pipeline.vendor import VendorConfig


class BrandingLeak(ValueError):
    """Vendor branding is left in a text meant for an OEM."""


@dataclass(frozen=True)
class Whitelabel:
    terms: tuple[str, ...]
    brand: str | None  # None: the vendor's own copy, nothing to replace

    @classmethod
    def for_audience(cls, vendor: VendorConfig, brand: str | None) -> Whitelabel:
        return cls(tuple(sorted(vendor.branding_terms, key=len, reverse=True)), brand)

    def _pattern(self) -> re.Pattern:
        return re.compile(r"(?<![\w-])(" + "|".join(re.escape(t) for t in self.terms) + r")(?![\w])")

    def apply(self, text: str) -> str:
        if self.brand is None or not text:
            return text
        return self._pattern().sub(self.brand, text)

    def check(self, text: str, where: str) -> str:
        """Return ``text``; raise if it still shows vendor branding (OEM copies only)."""
        if self.brand is not None and (found := sorted(set(self._pattern().findall(text)))):
            raise BrandingLeak(f"{where}: vendor branding {found} left in a copy for {self.brand}")
        return text
