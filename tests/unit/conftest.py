"""Fixtures of the domain tests."""

import pytest

from release_pipeline.cli import main


@pytest.fixture
def cli(release_db_url, capsys):
    """``cli(*argv)`` runs ``release-train --db-url <the test's database> *argv``; returns
    (exit code, stdout, stderr)."""

    def run(*argv):
        code = main(["--db-url", release_db_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
