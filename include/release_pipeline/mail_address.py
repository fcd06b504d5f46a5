"""E-mail addresses as config/oems.yaml writes them: ``releases@nimbus.example`` or
``Nimbus Connect Releases <releases@nimbus.example>``."""

from __future__ import annotations

import re
from email.utils import parseaddr

# a pragmatic check, not RFC 5322: one local part, one dotted domain, no spaces
_LOCAL = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
_ADDRESS = re.compile(rf"^{_LOCAL}@{_DOMAIN}$")


def address_problem(value: str) -> str | None:
    """Why ``value`` is not an address a mail server accepts, or None."""
    if not isinstance(value, str) or not value.strip():
        return "an e-mail address must not be empty"
    if "\n" in value or "\r" in value:
        return f"{value!r} holds a line break"
    name, address = parseaddr(value)
    if not address or not _ADDRESS.match(address):
        return f"{value!r} is not an e-mail address (e.g. releases@example.com or Releases <releases@example.com>)"
    if "<" in value:
        if not value.rstrip().endswith(">"):
            return f"{value!r}: text after the <address>"
    elif value.strip() != address:
        return f"{value!r}: a display name needs the address in <...> (Name <{address}>)"
    return None


def bare_address(value: str) -> str:
    """``releases@nimbus.example`` of ``Nimbus Releases <releases@nimbus.example>``."""
    return parseaddr(value)[1]


def domain_of(value: str) -> str:
    return bare_address(value).rsplit("@", 1)[1].lower()
