"""White-labelling, and the guard behind it: an OEM copy names the OEM's product and
hosts, never the vendor's, and nothing of another OEM.

Every match below runs on the text as it is read, not as it is spelled
(:mod:`release_pipeline.notes.normalise`: HTML references, percent-encoding and IDNA
decoded, invisible characters dropped, NFKC, case folding and Unicode confusable
skeletons), so ``A.V.A``, ``ＡＶＡ``, Cyrillic ``АVA``, ``&#65;VA``, ``%41VA`` and
``https://%61va.example`` are all the vendor's name. See ``docs/whitelabel.md``.

:class:`Whitelabel` is the one white-label step every text meant for an OEM passes, in
this order:

1. the vendor's URLs (``production_url``, ``docs_portal_url``) become the OEM's
   (``acceptance_url``, ``docs_url``), with or without a scheme, paths kept;
2. the OEM's glossary (``"AVA Studio" -> "Nimbus Studio"``, ``ava-ctl -> nimbus-ctl``);
3. the vendor's branding terms become the OEM's ``brand_name``, styled to fit where they
   stand: ``Ava runtime`` and ``non-AVA`` get the name as it is, ``AVA_API`` becomes
   ``NIMBUS_CONNECT_API``, ``ava-ctl`` ``nimbus-connect-ctl``, ``AVAConnect``
   ``NimbusConnectConnect``.

A name is replaced only where it is a word or an identifier part of its own: it begins
and ends at a word boundary, a separator, a letter/digit step or a camel-case step
(``AVAConnect``, ``myAvaThing``, ``AVA_API``, ``non-AVA``). ``Havana``, ``avatar`` and
``JavaBeans`` are never touched. The words of a multi-word term may be joined by any
separators or none (``AVA Studio``, ``ava_studio``, ``AVAStudio``), and the letters of a
short one-word name by one separator each (``A.V.A``, ``A-V-A``, ``A V A``). A vendor
host the URL step did not map (``status.ava.example``) is not rewritten into a made-up
host: the guard holds it.

:class:`Guard` is the final check: it looks for the vendor's names, hosts and
identifiers and for every *other* OEM's id, company, brand name and hosts. A name as a
word or identifier part is a hit; so is a name inside a longer word (``nonava``,
``xAVAy``) unless that word is an ordinary English word (the ``english-words`` list, and
``ordinary_words`` in ``config/vendor.yaml``): ``caravan`` and ``Java`` pass, and are
never rewritten either. The recipient's own names are matched in the same pass, longest
first, so another OEM's brand that contains the recipient's name (``Nimbus Plus`` sent to
nimbus) is that other OEM's. Any hit is a :class:`Leak`; the send path holds the whole
send on one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from release_pipeline.notes.normalise import View, fold, fold_char, view

if TYPE_CHECKING:
    from release_pipeline.registry import Oem, Registry
    from release_pipeline.vendor import VendorConfig

_CHUNK = re.compile(r"[^\W_]+")
PASSAGE_CONTEXT = 40
# a one-word name of at most this many letters is also found spelled out, one separator
# between its letters (A.V.A, A-V-A, A V A)
SHORT_NAME = 8
_SEPARATOR = r"(?:[^\w\n]|_)"
# the prefix of the OEM-neutral id shown for a change (or roadmap item) whose key carries
# the vendor's name
NEUTRAL_CHANGE_PREFIX = "CHANGE"
NEUTRAL_ITEM_PREFIX = "ITEM"


def term_pattern(term: str) -> str:
    """A regex, on folded text (:func:`normalise.fold`), for ``term``: its runs of letters
    and digits joined by any separators or none; a run of at most :data:`SHORT_NAME`
    letters also spelled out, one separator between its letters (``A.V.A``,
    ``N.i.m.b.u.s Plus``)."""
    runs: list[list[str]] = [[]]
    for char in term:
        folded = fold_char(char)
        if folded and folded.isalnum():
            runs[-1].append(folded)
        elif folded and runs[-1]:
            runs.append([])
    runs = [run for run in runs if run]
    if not runs:
        raise ValueError(f"term {term!r} has no letter or digit")
    alternatives = []
    for run in runs:
        joined = re.escape("".join(run))
        if 1 < len(run) <= SHORT_NAME:
            joined = f"(?:{joined}|{_SEPARATOR.join(re.escape(letter) for letter in run)})"
        alternatives.append(joined)
    return r"[\W_]*".join(alternatives)


def _ordered(terms: Iterable[str]) -> list[str]:
    """Distinct terms with a letter or digit, longest (as read) first."""
    return sorted(dict.fromkeys(t for t in terms if _CHUNK.search(fold(t))), key=lambda t: len(fold(t)), reverse=True)


def _compile(terms: Iterable[str]) -> re.Pattern | None:
    ordered = _ordered(terms)
    if not ordered:
        return None
    return re.compile("|".join(f"(?:{term_pattern(t)})" for t in ordered))


@lru_cache(maxsize=8)
def _view_of(text: str) -> View:
    """The view of ``text``, kept for the next step of the white-label step, which mostly
    reads the same text again (nothing was replaced)."""
    return view(text)


def _at_boundaries(v: View, start: int, end: int) -> bool:
    return v.boundary(start) and v.boundary(end)


def _search(pattern: re.Pattern, v: View) -> Iterator[tuple[int, int]]:
    """Every place ``pattern`` matches in the view, overlapping ones included: the caller
    decides whether a match counts (see :func:`_names`)."""
    pos = 0
    while pos <= len(v.text):
        m = pattern.search(v.text, pos)
        if m is None or m.end() == m.start():
            return
        yield m.span()
        pos = m.start() + 1


def _names(pattern: re.Pattern, v: View, counts) -> Iterator[tuple[int, int]]:
    """The matches ``counts(start, end)`` accepts, leftmost first, never overlapping."""
    taken = 0
    for start, end in _search(pattern, v):
        if start >= taken and counts(start, end):
            yield start, end
            taken = end


@cache
def _dictionary() -> frozenset[str]:
    """The English word list (``english-words``: web2 and GCIDE), lower-case letters only."""
    from english_words import get_english_words_set

    return frozenset(get_english_words_set(["web2", "gcide"], alpha=True, lower=True))


@cache
def ordinary_words(chunks: frozenset[str], extra: frozenset[str] = frozenset()) -> frozenset[str]:
    """The ordinary words (as read) that contain one of ``chunks``: the only words a
    name may stand inside of without being held. Loaded once per process, and only once
    a name is found inside a longer word."""
    ascii_fold = {c: fold_char(c) for c in "abcdefghijklmnopqrstuvwxyz0123456789"}
    table = str.maketrans(ascii_fold)
    words = (w.translate(table) for w in _dictionary())
    found = {w for w in words if any(c in w for c in chunks)}
    return frozenset(found | {fold(w) for w in extra})


def _passage(text: str, start: int, end: int) -> str:
    before = text[max(0, start - PASSAGE_CONTEXT) : start]
    after = text[end : end + PASSAGE_CONTEXT]
    return " ".join(f"{'…' if start > PASSAGE_CONTEXT else ''}{before}[{text[start:end]}]{after}".split())


def _splice(text: str, replacements: Iterable[tuple[int, int, str]]) -> str:
    """``text`` with each source span replaced (spans ascending; an overlap is skipped)."""
    out, last = [], 0
    for start, end, new in replacements:
        if start < last:
            continue
        out += [text[last:start], new]
        last = end
    out.append(text[last:])
    return "".join(out)


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


def _styled(brand: str, v: View, start: int, end: int) -> str:
    """``brand`` in the shape of the term it replaces at ``v.text[start:end]``."""
    before = v.text[start - 1] if start > 0 else ""
    after = v.text[end] if end < len(v.text) else ""
    words = _brand_words(brand)
    run_start, run_end = v.run(start, end)
    cases = {v.case[i] for i in range(run_start, run_end) if v.text[i].isalpha()}
    if cases == {"U"}:
        case = [w.upper() for w in words]
    elif cases == {"L"}:
        case = [w.lower() for w in words]
    else:
        case = [w[:1].upper() + w[1:] for w in words]
    if before.isalpha() or after.isalpha():  # AVAConnect, myAvaThing
        return "".join(case)
    if "_" in (before, after) or before.isdigit() or after.isdigit():  # AVA_API, ava2
        return "_".join(case)
    if cases == {"L"} and ({before, after} & {"-", ".", "/"}):  # ava-ctl, /ava/, ava.internal
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
    vendor_hosts: tuple[str, ...] = ()
    vendor_names: tuple[str, ...] = ()  # what makes a change key the vendor's (AVA-1234)
    _patterns: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def for_audience(cls, vendor: VendorConfig, brand: str | None) -> Whitelabel:
        return cls(tuple(vendor.branding_terms), brand, vendor_names=vendor.guarded_terms)

    @classmethod
    def for_oem(cls, vendor: VendorConfig, oem: Oem) -> Whitelabel:
        return cls(
            terms=tuple(vendor.branding_terms),
            brand=oem.brand_name,
            urls=((vendor.production_url, oem.acceptance_url), (vendor.docs_portal_url, oem.docs_url)),
            glossary=tuple(sorted(oem.glossary.items(), key=lambda kv: len(fold(kv[0])), reverse=True)),
            vendor_hosts=tuple(h for h in (*vendor.hosts, *vendor.url_hosts) if "." in h),
            vendor_names=vendor.guarded_terms,
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
            pattern = self._pattern(f"g:{term}", lambda t=term: re.compile(term_pattern(t)))
            text = self._sub(pattern, text, lambda _v, _s, _e, r=replacement: r)
        terms = self._pattern("terms", lambda: _compile(self.terms))
        if terms is not None:
            text = self._sub(terms, text, lambda v, s, e: _styled(self.brand, v, s, e), protect_hosts=True)
        return text

    def neutral_id(self, key: str, prefix: str = NEUTRAL_CHANGE_PREFIX) -> str:
        """The id an OEM is shown for a change (or a roadmap item): the key as it is, or,
        for a key that carries the vendor's name anywhere (a Jira key ``AVA-1234``), the
        OEM-neutral ``CHANGE-1234`` (``CHANGE-<hash of the key>`` when what follows the
        prefix is not a plain number). :meth:`real_id` reads it back. An id is never
        rewritten like a text: that would break the reference."""
        if self.brand is None or not key:
            return key
        names = self._pattern("names", lambda: _compile(self.vendor_names))
        if names is None or not any(True for _ in _search(names, view(key))):
            return key
        project, _, number = key.partition("-")
        if re.fullmatch(r"[A-Za-z]+", project) and re.fullmatch(r"[0-9]+", number):
            return f"{prefix}-{number}"
        return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"

    def real_id(self, shown: str, keys: Iterable[str]) -> str:
        """The key among ``keys`` that an OEM knows as ``shown``: ``shown`` itself when it
        is one of them (a real key always wins) or when none or several map to it."""
        keys = list(keys)
        if shown in keys:
            return shown
        matches = [k for k in keys if self.neutral_id(k) == shown]
        return matches[0] if len(matches) == 1 else shown

    def _swap_urls(self, text: str) -> str:
        for vendor_url, oem_url in self.urls:
            if not oem_url:
                continue  # left for the guard: the OEM has no such URL configured
            host, path = _url_parts(vendor_url)
            oem_host, oem_path = _url_parts(oem_url)
            pattern = self._pattern(
                f"u:{vendor_url}",
                lambda h=host, p=path: re.compile(
                    r"(?<![\w.-])(?P<scheme>https?://)?" + re.escape(fold(h + p)) + r"(?![\w-])"
                ),
            )
            v = _view_of(text)
            swaps = []
            for m in pattern.finditer(v.text):
                start, end = v.source_span(*m.span())
                swaps.append((start, end, oem_url.rstrip("/") if m["scheme"] else oem_host + oem_path))
            text = _splice(text, swaps)
        return text

    def _vendor_hosts(self, v: View) -> list[tuple[int, int]]:
        """Spans (in the view) of vendor hosts (``status.ava.example``) the URL step did not map."""
        if not self.vendor_hosts:
            return []
        pattern = self._pattern(
            "hosts",
            lambda: re.compile(
                r"(?<![\w-])(?:[\w-]+\.)*(?:" + "|".join(re.escape(fold(h)) for h in self.vendor_hosts) + r")(?![\w-])"
            ),
        )
        return [m.span() for m in pattern.finditer(v.text)]

    def _sub(self, pattern: re.Pattern, text: str, replace, protect_hosts: bool = False) -> str:
        """``text`` with every match of ``pattern`` that is a word or identifier part of its
        own replaced by ``replace(view, start, end)``."""
        v = _view_of(text)
        protect = self._vendor_hosts(v) if protect_hosts else []

        def counts(start: int, end: int) -> bool:
            if not _at_boundaries(v, start, end):
                return False
            return not any(start < p_end and p_start < end for p_start, p_end in protect)

        return _splice(text, ((*v.source_span(s, e), replace(v, s, e)) for s, e in _names(pattern, v, counts)))


# -- the guard ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Guard:
    """What one OEM must never receive: the vendor's names and hosts, and every other
    OEM's id, company, brand and hosts. Its own names are found in the same pass, longest
    name first: an OEM ``nimbus`` reads its own name, and another OEM's brand ``Nimbus
    Plus`` is still the other OEM's."""

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
            forbidden += [(f"OEM {other.id}", term) for term in oem_names(other)]
        return cls(oem.id, tuple(forbidden), oem_names(oem), _ordinary(vendor))

    @classmethod
    def for_anyone(cls, registry: Registry | Iterable[Oem], vendor: VendorConfig) -> Guard:
        """What someone not signed in may read: no OEM's names, and not the vendor's."""
        oems = registry.oems.values() if hasattr(registry, "oems") else registry
        forbidden = [("vendor", t) for t in vendor.guarded_terms]
        forbidden += [(f"OEM {oem.id}", term) for oem in oems for term in oem_names(oem)]
        return cls("anyone", tuple(forbidden), (), _ordinary(vendor))

    def _patterns(self):
        if not self._compiled:
            # (folded length, foreign before own on a tie): the longest name at a place wins
            names = [(owner, term) for owner, term in self.forbidden] + [("", term) for term in self.own]
            names = [(o, t) for o, t in names if _CHUNK.search(fold(t))]
            names.sort(key=lambda ot: (-len(fold(ot[1])), ot[0] == ""))
            self._compiled["all"] = re.compile("|".join(f"(?:{term_pattern(t)})" for _, t in names)) if names else None
            self._compiled["each"] = [(owner, term, re.compile(term_pattern(term))) for owner, term in names]
            chunks = frozenset(c for _, t in names for c in _CHUNK.findall(fold(t)))
            self._compiled["chunks"] = chunks
        return self._compiled

    def _which(self, found: str) -> tuple[str, str]:
        for owner, term, pattern in self._patterns()["each"]:
            if pattern.fullmatch(found):
                return owner, term
        return "vendor", found

    def _ordinary_word(self, v: View, start: int, end: int) -> bool:
        """The match lies inside a longer ordinary word (``caravan``, ``JavaBeans``'s ``Java``)."""
        words = ordinary_words(self._patterns()["chunks"], self.ordinary)
        for left, right in (v.part(start, end), v.run(start, end)):
            if (left, right) != (start, end) and v.text[left:right] in words:
                return True
        return False

    def scan(self, text: str, field_name: str = "") -> list[Leak]:
        if not text:
            return []
        pattern = self._patterns()["all"]
        if pattern is None:
            return []
        v = view(text)
        leaks: list[Leak] = []

        def counts(start: int, end: int) -> bool:
            return _at_boundaries(v, start, end) or not self._ordinary_word(v, start, end)

        for start, end in _names(pattern, v, counts):
            owner, term = self._which(v.text[start:end])
            if not owner:
                continue  # the recipient's own name
            s, e = v.source_span(start, end)
            leaks.append(Leak(owner, term, text[s:e], _passage(text, s, e), field_name))
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


def oem_names(oem: Oem) -> tuple[str, ...]:
    """Everything that names an OEM: its id, company, brand and hosts."""
    return (oem.id, oem.display_name, oem.brand_name, *oem.hosts)


def _ordinary(vendor: VendorConfig) -> frozenset[str]:
    return frozenset(w.lower() for w in vendor.ordinary_words)


def config_problems(registry: Registry, vendor: VendorConfig) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the white-label config across oems.yaml and vendor.yaml.

    An OEM's own names, hosts or glossary terms that contain the vendor's or another
    OEM's name are an error: the guard would hold everything it is sent, or (an OEM
    branded ``Nimbus Plus`` beside OEM ``nimbus``) the names would overlap. Each field is
    read without the OEM's own names, so an overlap is never masked by itself. An
    enabled OEM without ``acceptance_url``/``docs_url`` gets every text naming the
    vendor's production or docs host held: a warning."""
    errors, warnings = [], []
    for oem in registry.oems.values():
        where = f"{registry.file}: OEM '{oem.id}'"
        guard = Guard.for_oem(oem, registry, vendor)
        blind = Guard(oem.id, guard.forbidden, (), guard.ordinary)  # its own names not masked
        fields = {"brand_name": oem.brand_name, "display_name": oem.display_name, "id": oem.id}
        fields |= {"acceptance_url": oem.acceptance_url or "", "docs_url": oem.docs_url or ""}
        fields |= {f"glossary[{term!r}]": replacement for term, replacement in oem.glossary.items()}
        for name, value in fields.items():
            if leaks := blind.scan(value):
                found = ", ".join(sorted({f"{leak.owner} {leak.found!r}" for leak in leaks}))
                errors.append(
                    f"{where}, field '{name}': {value!r} contains {found}; an OEM's names must not "
                    "contain the vendor's or another OEM's: the guard would hold every send (rename one)"
                )
        if oem.enabled:
            for name in ("acceptance_url", "docs_url"):
                if getattr(oem, name) is None:
                    warnings.append(
                        f"{where}: no {name}: texts naming the vendor's "
                        f"{'production' if name == 'acceptance_url' else 'docs'} host are held for it"
                    )
    return errors, warnings
