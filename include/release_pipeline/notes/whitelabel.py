"""White-labelling, and the guard behind it: an OEM copy names the OEM's product and
hosts, never the vendor's, and nothing of another OEM.

:class:`Whitelabel` is the one white-label step every text meant for an OEM passes, in
this order:

1. the vendor's URLs (``production_url``, ``docs_portal_url``) become the OEM's
   (``acceptance_url``, ``docs_url``), with or without a scheme, paths kept;
2. the OEM's glossary (``"AVA Studio" -> "Nimbus Studio"``, ``ava-ctl -> nimbus-ctl``);
3. the vendor's branding terms become the OEM's ``brand_name``, styled to fit where they
   stand: ``Ava runtime`` and ``non-AVA`` get the name as it is, ``AVA_API`` becomes
   ``NIMBUS_CONNECT_API``, ``ava-ctl`` ``nimbus-connect-ctl``, ``AVAConnect``
   ``NimbusConnectConnect``.

Matching is case-insensitive and finds a term inside compound words and identifiers:
a term is a run of letters and digits, and the words of a multi-word term may be joined
by any separators or none (``AVA Studio``, ``ava_studio``, ``AVAStudio``). Ordinary
words that contain a term (``Java``, ``available``: ``ordinary_words`` in
``config/vendor.yaml``) are left alone. A vendor host the URL step did not map
(``status.ava.example``) is not rewritten into a made-up host: the guard holds it.

:class:`Guard` is the final check: it looks for the vendor's names, hosts and
identifiers and for every *other* OEM's id, company, brand name and hosts, the same
way (case-insensitively, inside words, identifiers, hosts and URLs). Any hit is a
:class:`Leak`; the send path holds the whole send on one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from release_pipeline.registry import Oem, Registry
    from release_pipeline.vendor import VendorConfig

_CHUNK = re.compile(r"[^\W_]+")
_LETTER_RUN = re.compile(r"[^\W\d_]+")
PASSAGE_CONTEXT = 40


def term_pattern(term: str) -> str:
    """A regex for ``term``: its runs of letters/digits, joined by any separators or none."""
    chunks = _CHUNK.findall(term)
    if not chunks:
        raise ValueError(f"term {term!r} has no letter or digit")
    return r"[\W_]*".join(re.escape(c) for c in chunks)


def _compile(terms: Iterable[str]) -> re.Pattern | None:
    ordered = sorted(dict.fromkeys(t for t in terms if _CHUNK.search(t)), key=len, reverse=True)
    if not ordered:
        return None
    return re.compile("|".join(f"(?:{term_pattern(t)})" for t in ordered), re.IGNORECASE)


def _enclosing_word(text: str, start: int, end: int) -> str:
    """The run of letters around ``text[start:end]`` (the match itself, widened)."""
    left = start
    while left > 0 and text[left - 1].isalpha():
        left -= 1
    right = end
    while right < len(text) and text[right].isalpha():
        right += 1
    return text[left:right]


def _in_ordinary_word(text: str, start: int, end: int, ordinary: frozenset[str]) -> bool:
    """The match lies inside one run of letters that is an ordinary word (``Java``)."""
    if not ordinary:
        return False
    word = _enclosing_word(text, start, end)
    return word.isalpha() and word.lower() in ordinary


def _passage(text: str, start: int, end: int) -> str:
    before = text[max(0, start - PASSAGE_CONTEXT) : start]
    after = text[end : end + PASSAGE_CONTEXT]
    return " ".join(f"{'…' if start > PASSAGE_CONTEXT else ''}{before}[{text[start:end]}]{after}".split())


class BrandingLeak(ValueError):
    """A text meant for an OEM still shows the vendor or another OEM."""

    def __init__(self, leaks: list[Leak], where: str = ""):
        self.leaks = leaks
        found = "; ".join(f"{leak.field}: {leak.owner} {leak.term!r} in “{leak.passage}”" for leak in leaks)
        super().__init__(f"{where + ': ' if where else ''}{found}")


@dataclass(frozen=True)
class Leak:
    owner: str  # "vendor" or "OEM <id>"
    term: str  # the configured term that was found
    found: str  # the text as it stands
    passage: str  # the text around it, the hit in [brackets]
    field: str = ""  # where in the send (subject, html, ...)

    def as_dict(self) -> dict[str, str]:
        return {
            "owner": self.owner,
            "term": self.term,
            "found": self.found,
            "passage": self.passage,
            "field": self.field,
        }


# -- white-labelling ----------------------------------------------------------------------------
def _brand_words(brand: str) -> list[str]:
    return _CHUNK.findall(brand) or [brand]


def _styled(brand: str, text: str, start: int, end: int) -> str:
    """``brand`` in the shape of the term it replaces at ``text[start:end]``."""
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    words = _brand_words(brand)
    word = _enclosing_word(text, start, end)
    if word.isupper():
        case = [w.upper() for w in words]
    elif word.islower():
        case = [w.lower() for w in words]
    else:
        case = [w[:1].upper() + w[1:] for w in words]
    if before.isalpha() or after.isalpha():  # AVAConnect, myAvaThing
        return "".join(case)
    if "_" in (before, after) or before.isdigit() or after.isdigit():  # AVA_API, ava2
        return "_".join(case)
    if word.islower() and ({before, after} & {"-", ".", "/"}):  # ava-ctl, /ava/, ava.internal
        return "-".join(w.lower() for w in words)
    return brand


def _url_parts(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path.rstrip("/")


@dataclass(frozen=True)
class Whitelabel:
    """The white-label step for one audience. ``brand`` None: the vendor's own copy."""

    terms: tuple[str, ...]
    brand: str | None
    urls: tuple[tuple[str, str | None], ...] = ()  # vendor base URL -> OEM base URL (None: not set)
    glossary: tuple[tuple[str, str], ...] = ()
    ordinary: frozenset[str] = frozenset()
    vendor_hosts: tuple[str, ...] = ()
    _patterns: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_audience(cls, vendor: VendorConfig, brand: str | None) -> Whitelabel:
        return cls(tuple(vendor.branding_terms), brand, ordinary=_ordinary(vendor))

    @classmethod
    def for_oem(cls, vendor: VendorConfig, oem: Oem) -> Whitelabel:
        return cls(
            terms=tuple(vendor.branding_terms),
            brand=oem.brand_name,
            urls=((vendor.production_url, oem.acceptance_url), (vendor.docs_portal_url, oem.docs_url)),
            glossary=tuple(sorted(oem.glossary.items(), key=lambda kv: len(kv[0]), reverse=True)),
            ordinary=_ordinary(vendor),
            vendor_hosts=tuple(h for h in (*vendor.hosts, *vendor.url_hosts) if "." in h),
        )

    def _pattern(self, name: str, build) -> Any:
        if name not in self._patterns:
            self._patterns[name] = build()
        return self._patterns[name]

    def apply(self, text: str) -> str:
        if self.brand is None or not text:
            return text
        text = self._swap_urls(text)
        for term, replacement in self.glossary:
            pattern = self._pattern(f"g:{term}", lambda t=term: re.compile(term_pattern(t), re.IGNORECASE))
            text = self._sub(pattern, text, lambda _t, _s, _e, r=replacement: r)
        terms = self._pattern("terms", lambda: _compile(self.terms))
        if terms is not None:
            text = self._sub(
                terms, text, lambda t, s, e: _styled(self.brand, t, s, e), protect=self._vendor_hosts(text)
            )
        return text

    def _swap_urls(self, text: str) -> str:
        for vendor_url, oem_url in self.urls:
            if not oem_url:
                continue  # left for the guard: the OEM has no such URL configured
            host, path = _url_parts(vendor_url)
            oem_host, oem_path = _url_parts(oem_url)
            pattern = self._pattern(
                f"u:{vendor_url}",
                lambda h=host, p=path: re.compile(
                    r"(?<![\w.-])(?P<scheme>https?://)?" + re.escape(h + p) + r"(?![\w-])", re.IGNORECASE
                ),
            )
            text = pattern.sub(
                lambda m, u=oem_url, h=oem_host, p=oem_path: u.rstrip("/") if m["scheme"] else h + p, text
            )
        return text

    def _vendor_hosts(self, text: str) -> list[tuple[int, int]]:
        """Spans of vendor hosts (``status.ava.example``) the URL step did not map."""
        if not self.vendor_hosts:
            return []
        pattern = self._pattern(
            "hosts",
            lambda: re.compile(
                r"(?<![\w-])(?:[\w-]+\.)*(?:" + "|".join(re.escape(h) for h in self.vendor_hosts) + r")(?![\w-])",
                re.IGNORECASE,
            ),
        )
        return [m.span() for m in pattern.finditer(text)]

    def _sub(self, pattern: re.Pattern, text: str, replace, protect: list[tuple[int, int]] = ()) -> str:
        out, last = [], 0
        for m in pattern.finditer(text):
            start, end = m.span()
            if _in_ordinary_word(text, start, end, self.ordinary):
                continue
            if any(start < p_end and p_start < end for p_start, p_end in protect):
                continue
            out += [text[last:start], replace(text, start, end)]
            last = end
        out.append(text[last:])
        return "".join(out)


def _ordinary(vendor: VendorConfig) -> frozenset[str]:
    return frozenset(w.lower() for w in vendor.ordinary_words)


# -- the guard ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Guard:
    """What one OEM must never receive: the vendor's names and hosts, and every other
    OEM's id, company, brand and hosts. Its own names are masked before looking for
    other OEMs' (an OEM ``nimbus`` and another's brand ``Nimbus Plus`` stay apart)."""

    recipient: str
    forbidden: tuple[tuple[str, str], ...]  # (owner, term)
    own: tuple[str, ...]
    ordinary: frozenset[str]
    _compiled: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_oem(cls, oem: Oem, registry: Registry | Iterable[Oem], vendor: VendorConfig) -> Guard:
        oems = registry.oems.values() if hasattr(registry, "oems") else registry
        forbidden = [("vendor", t) for t in vendor.guarded_terms]
        for other in oems:
            if other.id == oem.id:
                continue
            for term in (other.id, other.display_name, other.brand_name, *other.hosts):
                forbidden.append((f"OEM {other.id}", term))
        own = (oem.id, oem.display_name, oem.brand_name, *oem.hosts)
        return cls(oem.id, tuple(forbidden), own, _ordinary(vendor))

    def _patterns(self):
        if not self._compiled:
            owners: dict[str, str] = {}
            for owner, term in self.forbidden:
                owners.setdefault(term.lower(), owner)
            self._compiled["vendor"] = _compile(t for o, t in self.forbidden if o == "vendor")
            self._compiled["oems"] = _compile(t for o, t in self.forbidden if o != "vendor")
            self._compiled["own"] = _compile(self.own)
            self._compiled["each"] = [
                (owner, term, re.compile(term_pattern(term), re.IGNORECASE))
                for owner, term in self.forbidden
                if _CHUNK.search(term)
            ]
        return self._compiled

    def _which(self, found: str, vendor: bool) -> tuple[str, str]:
        for owner, term, pattern in self._patterns()["each"]:
            if (owner == "vendor") == vendor and pattern.fullmatch(found):
                return owner, term
        return ("vendor" if vendor else "another OEM"), found

    def scan(self, text: str, field_name: str = "") -> list[Leak]:
        if not text:
            return []
        compiled = self._patterns()
        leaks: list[Leak] = []
        if compiled["vendor"] is not None:
            for m in compiled["vendor"].finditer(text):
                if not _in_ordinary_word(text, *m.span(), self.ordinary):
                    owner, term = self._which(m.group(0), vendor=True)
                    leaks.append(Leak(owner, term, m.group(0), _passage(text, *m.span()), field_name))
        if compiled["oems"] is not None:
            masked = text
            if compiled["own"] is not None:
                masked = compiled["own"].sub(lambda m: "\0" * len(m.group(0)), text)
            for m in compiled["oems"].finditer(masked):
                if not _in_ordinary_word(masked, *m.span(), self.ordinary):
                    owner, term = self._which(m.group(0), vendor=False)
                    leaks.append(Leak(owner, term, m.group(0), _passage(text, *m.span()), field_name))
        return leaks

    def scan_value(self, value: Any, field_name: str = "") -> list[Leak]:
        """Every string inside ``value`` (dicts, lists), each leak naming its field."""
        if isinstance(value, str):
            return self.scan(value, field_name)
        if isinstance(value, Mapping):
            return [
                leak
                for key, item in value.items()
                for leak in self.scan_value(item, f"{field_name}.{key}" if field_name else str(key))
            ]
        if isinstance(value, list | tuple):
            return [leak for i, item in enumerate(value) for leak in self.scan_value(item, f"{field_name}[{i}]")]
        return []

    def check(self, value: Any, where: str = "") -> Any:
        if leaks := self.scan_value(value):
            raise BrandingLeak(leaks, where)
        return value


def config_problems(registry: Registry, vendor: VendorConfig) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the white-label config across oems.yaml and vendor.yaml.

    An OEM's own names, hosts or glossary terms that contain the vendor's or another
    OEM's name would make the guard hold everything it is sent: an error. An enabled OEM
    without ``acceptance_url``/``docs_url`` gets every text naming the vendor's
    production or docs host held: a warning."""
    errors, warnings = [], []
    vendor_guard = Guard("vendor-check", tuple(("vendor", t) for t in vendor.guarded_terms), (), _ordinary(vendor))
    for oem in registry.oems.values():
        where = f"{registry.file}: OEM '{oem.id}'"
        guard = Guard.for_oem(oem, registry, vendor)
        fields = {"brand_name": oem.brand_name, "display_name": oem.display_name, "id": oem.id}
        fields |= {"acceptance_url": oem.acceptance_url or "", "docs_url": oem.docs_url or ""}
        fields |= {f"glossary[{term!r}]": replacement for term, replacement in oem.glossary.items()}
        for name, value in fields.items():
            leaks = vendor_guard.scan(value) + [leak for leak in guard.scan(value) if leak.owner != "vendor"]
            if leaks:
                found = ", ".join(sorted({f"{leak.owner} {leak.found!r}" for leak in leaks}))
                errors.append(f"{where}, field '{name}': {value!r} contains {found}; the guard would hold every send")
        if oem.enabled:
            for name in ("acceptance_url", "docs_url"):
                if getattr(oem, name) is None:
                    warnings.append(
                        f"{where}: no {name}: texts naming the vendor's "
                        f"{'production' if name == 'acceptance_url' else 'docs'} host are held for it"
                    )
    return errors, warnings
