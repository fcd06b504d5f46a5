"""``config/vendor.yaml``: who the vendor is, and the names, hosts and identifiers that
no OEM may ever see (see :mod:`release_pipeline.notes.whitelabel`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


ChangeTypeName = Literal["feature", "improvement", "fix", "component"]  # release_pipeline.models.ChangeType


class HttpChangeSource(BaseModel):
    """The change feed over HTTP (connection ``change_feed``): ``GET changes?since=&until=``
    answering ``{"changes": [...]}`` (:mod:`release_pipeline.change_feed`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["http"] = "http"


class GitChangeSource(BaseModel):
    """A git repository whose main branch follows Conventional Commits
    (:mod:`release_pipeline.git_changes`, docs/change-sources.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["git"]
    # a local path or a clone URL; credentials, if any, come from the Airflow connection
    repository: str = Field(min_length=1)
    branch: str = Field(default="main", min_length=1)
    # an Airflow connection of type git (apache-airflow-providers-git): its host is the
    # repository URL and its password an access token, or its extra a private key
    connection: str | None = Field(default=None, min_length=1)
    # the component of a commit without a scope; None: such a commit is refused
    default_component: str | None = Field(default=None, min_length=1, max_length=100)
    # commit type -> change type; the skipped types are not user-facing (no change); any
    # other type refuses the answer, so that a typo never drops a change
    types: dict[str, ChangeTypeName] = Field(
        default_factory=lambda: {"feat": "feature", "fix": "fix", "perf": "improvement", "refactor": "improvement"}
    )
    skipped_types: tuple[str, ...] = ("build", "chore", "ci", "docs", "style", "test")

    @model_validator(mode="after")
    def _types_apart(self) -> GitChangeSource:
        if both := sorted(set(self.types) & set(self.skipped_types)):
            raise ValueError(f"commit type(s) {', '.join(both)} both mapped in 'types' and listed in 'skipped_types'")
        if bad := [t for t in (*self.types, *self.skipped_types) if not t.isalpha() or not t.islower()]:
            raise ValueError(f"commit types are lower-case words: {', '.join(map(repr, bad))}")
        return self


class JiraChangeSource(BaseModel):
    """Jira issues resolved in the cut's span, by fix version or JQL, through the
    atlassian-jira provider (:mod:`release_pipeline.jira_changes`, docs/change-sources.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["jira"]
    connection: str = Field(default="jira", min_length=1)
    # cloud: /rest/api/3/search/jql (token pagination); server: Jira Server or Data Center,
    # /rest/api/2/search (startAt/total)
    deployment: Literal["cloud", "server"]
    # server only: the connection's password is a personal access token (Bearer), no login
    personal_access_token: bool = False
    # which issues: a fix version ("{release}" is the release id) and/or a JQL filter
    fix_version: str | None = Field(default=None, min_length=1)
    jql: str | None = Field(default=None, min_length=1)
    # the field holding the release note (plain text; on Cloud the description is ADF)
    release_note_field: str = Field(min_length=1)
    # issue type name -> change type; issues of other types are skipped
    issue_types: dict[str, ChangeTypeName] = Field(
        default_factory=lambda: {
            "Story": "feature",
            "New Feature": "feature",
            "Improvement": "improvement",
            "Bug": "fix",
        }
    )
    breaking_label: str = Field(default="breaking", min_length=1)
    # labels of this form name the roadmap items an issue delivers: "roadmap:<item id>"
    roadmap_label_prefix: str = Field(default="roadmap:", min_length=1)
    page_size: int = Field(default=50, ge=1, le=100)

    @field_validator("jql")
    @classmethod
    def _no_order(cls, value: str | None) -> str | None:
        if value is not None and "order by" in value.lower():
            raise ValueError("leave ORDER BY out: the release train adds its own (by resolution date)")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> JiraChangeSource:
        if self.fix_version is None and self.jql is None:
            raise ValueError("name the issues: set fix_version, jql or both")
        if self.personal_access_token and self.deployment == "cloud":
            raise ValueError("personal_access_token is for Jira Server and Data Center; Cloud uses an API token")
        return self


ChangeSource = Annotated[HttpChangeSource | GitChangeSource | JiraChangeSource, Field(discriminator="kind")]


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
    # where the cut reads the changes merged since the previous cut (docs/change-sources.md)
    change_source: ChangeSource = HttpChangeSource()

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
