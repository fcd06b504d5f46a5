"""``change_source`` in config/vendor.yaml: which adapter the cut reads (docs/change-sources.md),
validated at load with errors naming the file, line and field."""

from __future__ import annotations

import pytest

from release_pipeline.config_loading import InvalidConfig, config_dir
from release_pipeline.vendor import GitChangeSource, HttpChangeSource, JiraChangeSource, load_vendor


def vendor_with(tmp_path, block: str):
    path = tmp_path / "vendor.yaml"
    path.write_text((config_dir() / "vendor.yaml").read_text() + f"\nchange_source: {block}\n")
    return path


def refused(tmp_path, block: str) -> str:
    with pytest.raises(InvalidConfig) as raised:
        load_vendor(vendor_with(tmp_path, block))
    return str(raised.value)


def test_the_http_feed_is_the_default(tmp_path):
    assert load_vendor().change_source == HttpChangeSource()
    assert load_vendor(vendor_with(tmp_path, "{kind: http}")).change_source == HttpChangeSource()


def test_git_and_jira_sources_load(tmp_path):
    git = load_vendor(vendor_with(tmp_path, "{kind: git, repository: /srv/platform.git, default_component: core}"))
    assert git.change_source == GitChangeSource(kind="git", repository="/srv/platform.git", default_component="core")
    assert git.change_source.branch == "main" and git.change_source.connection is None
    jira = load_vendor(
        vendor_with(
            tmp_path,
            "{kind: jira, deployment: cloud, fix_version: 'Platform {release}', release_note_field: customfield_10050}",
        )
    ).change_source
    assert isinstance(jira, JiraChangeSource) and jira.connection == "jira" and jira.issue_types["Bug"] == "fix"


def test_an_unknown_kind_names_the_field_and_the_kinds(tmp_path):
    message = refused(tmp_path, "{kind: svn, repository: x}")
    assert "vendor.yaml:" in message and "field 'change_source'" in message
    assert "'http', 'git', 'jira'" in message


def test_a_bad_field_of_a_source_names_it(tmp_path):
    message = refused(tmp_path, "{kind: git, repo: /srv/platform.git}")
    assert "field 'change_source.git.repository'" in message and "is required but missing" in message
    assert "field 'change_source.git.repo'" in message and "unknown field" in message
    message = refused(tmp_path, "{kind: jira, deployment: datacenter, jql: 'project = AVA', release_note_field: x}")
    assert "field 'change_source.jira.deployment'" in message and "'cloud' or 'server'" in message


def test_jira_needs_a_filter_and_no_order_and_a_token_only_on_server(tmp_path):
    assert "set fix_version, jql or both" in refused(
        tmp_path, "{kind: jira, deployment: server, release_note_field: customfield_1}"
    )
    assert "leave ORDER BY out" in refused(
        tmp_path, "{kind: jira, deployment: server, jql: 'project = AVA ORDER BY key', release_note_field: x}"
    )
    assert "personal_access_token is for Jira Server" in refused(
        tmp_path,
        "{kind: jira, deployment: cloud, jql: 'project = AVA', release_note_field: x, personal_access_token: true}",
    )


def test_a_git_type_is_either_mapped_or_skipped(tmp_path):
    message = refused(tmp_path, "{kind: git, repository: /srv/p, types: {feat: feature, chore: fix}}")
    assert (
        "field 'change_source.git'" in message
        and "chore both mapped in 'types' and listed in 'skipped_types'" in message
    )
    message = refused(tmp_path, "{kind: git, repository: /srv/p, types: {feat: novelty}}")
    assert (
        "field 'change_source.git.types.feat'" in message
        and "'feature', 'improvement', 'fix' or 'component'" in message
    )
