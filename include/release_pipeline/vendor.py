"""``config/vendor.yaml``: who the vendor is, and the names, hosts and identifiers that
no OEM may ever see (see :mod:`release_pipeline.notes.whitelabel`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from release_pipeline.config_loading import InvalidConfig, config_dir, load_located_yaml, validation_errors


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an absolute http(s) URL")
    return value


class StaffChat(BaseModel):
    """Where alerts for the vendor's staff go (connection ``ava_notify``): ``http``, the
    vendor's HTTP sink (JSON posts, for any chat tool with a webhook bridge), or ``slack``,
    a Slack incoming webhook (connection type ``slackwebhook``, the webhook URL as its
    password), retried on server errors and rate limits ``retries`` times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["http", "slack"] = "http"
    retries: int = Field(default=3, ge=0, le=10)


class VendorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    product_name: str = Field(min_length=1)
    branding_terms: tuple[str, ...] = Field(min_length=1)
    hosts: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    ordinary_words: tuple[str, ...] = ()
    portal_url: str
    production_url: str
    docs_portal_url: str
    staff_chat: StaffChat = StaffChat()

    @field_validator("branding_terms", "hosts", "identifiers", "ordinary_words")
    @classmethod
    def _no_blank_entries(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not value.strip() or not any(ch.isalnum() for ch in value):
                raise ValueError(f"{value!r}: every entry needs a letter or digit")
        return values

    @field_validator("portal_url", "production_url", "docs_portal_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return _absolute_url(value)

    @property
    def url_hosts(self) -> tuple[str, ...]:
        """The hosts of the vendor production and docs portal (the OEM portal's own host is
        what OEMs are told to use, so it is not one)."""
        return tuple(urlsplit(u).hostname for u in (self.production_url, self.docs_portal_url))

    @property
    def guarded_terms(self) -> tuple[str, ...]:
        """Everything the final guard looks for in a text meant for an OEM."""
        terms = (self.name, self.product_name, *self.branding_terms, *self.hosts, *self.url_hosts, *self.identifiers)
        return tuple(dict.fromkeys(terms))


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def production_problems(vendor: VendorConfig, where: str = "config/vendor.yaml") -> list[str]:
    """What makes the config unfit for production, where OEMs sign in over the internet:
    ``make up``'s ``http://localhost`` portal URL is right on a laptop and wrong there (the
    session cookie would not be ``Secure``, the links in every message would point nowhere)."""
    url = urlsplit(vendor.portal_url)
    fix = "set it to the public https address of the TLS proxy in front of the portal, e.g. https://portal.example.com/oem-portal/"
    if url.scheme != "https":
        return [f"{where}, field 'portal_url': {vendor.portal_url!r} is not https: OEMs sign in over it; {fix}"]
    if url.hostname in LOCAL_HOSTS:
        return [f"{where}, field 'portal_url': {vendor.portal_url!r} is this machine, which OEMs cannot reach; {fix}"]
    return []


def load_vendor(path: Path | None = None) -> VendorConfig:
    located = load_located_yaml(path or config_dir() / "vendor.yaml")
    try:
        return VendorConfig.model_validate(located.data)
    except ValidationError as exc:
        raise InvalidConfig(validation_errors(exc, VendorConfig, located, (), "vendor")) from None
