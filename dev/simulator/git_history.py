"""The vendor platform's history as a real git repository with Conventional Commits: the
change feed's changes (the simulator's, ``simulator.demo``) written as commits on ``main``
at their merge times, every other one as a pull request merged with a merge commit, so that
``git log`` shows a release's changes and the git change source reads them back
(docs/change-sources.md). Needs the git binary."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pendulum

# the change types as commit types; "component" is the demo vendor's own type for a new
# component version (mapped in the change source's ``types``: TYPES_CONFIG)
COMMIT_TYPES = {"feature": "feat", "fix": "fix", "improvement": "perf", "component": "component"}
TYPES_CONFIG = {
    "feat": "feature",
    "fix": "fix",
    "perf": "improvement",
    "refactor": "improvement",
    "component": "component",
}
AUTHOR = ("Platform Dev", "dev@platform.example")


def commit_message(change: dict) -> str:
    """A feed change as a Conventional Commits message; its id is the ``Change-Id`` footer."""
    header = f"{COMMIT_TYPES[change['type']]}({change['component']}){'!' if change.get('breaking') else ''}"
    footers = [f"Refs: {', '.join(change['roadmap_items'])}"] if change.get("roadmap_items") else []
    footers.append(f"Change-Id: {change['id']}")
    body = (change.get("description") or "").strip()
    return f"{header}: {change['title']}\n\n" + (f"{body}\n\n" if body else "") + "\n".join(footers) + "\n"


def run_git(path: Path, *args: str, at: dt.datetime | None = None) -> str:
    """``git args...`` in ``path``, as one fixed author; a commit at ``at`` (author and committer)."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": AUTHOR[0],
        "GIT_AUTHOR_EMAIL": AUTHOR[1],
        "GIT_COMMITTER_NAME": AUTHOR[0],
        "GIT_COMMITTER_EMAIL": AUTHOR[1],
        "GIT_CONFIG_GLOBAL": os.devnull,  # nobody's own git settings (signing, hooks) apply
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if at is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = at.isoformat()
    done = subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def write_history(path: Path, changes: Iterable[dict]) -> Path:
    """A new repository at ``path`` (replacing nothing: it must not exist) holding
    ``changes`` in merge order; returns ``path``."""
    path.mkdir(parents=True)
    run_git(path, "init", "--quiet", "--initial-branch=main")
    ordered = sorted(changes, key=lambda c: c["merged_at"])
    first = pendulum.parse(ordered[0]["merged_at"]) if ordered else pendulum.now("UTC")
    (path / "README.md").write_text("# Integration platform\n")
    run_git(path, "add", "README.md")
    run_git(path, "commit", "--quiet", "-m", "chore: start the repository", at=first.subtract(days=30))
    for number, change in enumerate(ordered, start=1):
        merged = pendulum.parse(change["merged_at"])
        slug = re.sub(r"[^a-z0-9]+", "-", change["title"].lower()).strip("-")[:40] or "change"
        (path / "changes").mkdir(exist_ok=True)
        (path / "changes" / f"{change['id']}.md").write_text(f"{change['title']}\n")
        if number % 2:  # committed straight to main
            run_git(path, "add", "--all")
            run_git(path, "commit", "--quiet", "-m", commit_message(change), at=merged)
            continue
        # a pull request: the work on a branch, merged with a merge commit titled like GitHub's
        run_git(path, "checkout", "--quiet", "-b", f"pr/{number}-{slug}")
        run_git(path, "add", "--all")
        run_git(path, "commit", "--quiet", "-m", f"wip: {change['title']}", at=merged.subtract(hours=2))
        run_git(path, "checkout", "--quiet", "main")
        message = f"Merge pull request #{number} from platform/{slug}\n\n{commit_message(change)}"
        run_git(path, "merge", "--quiet", "--no-ff", f"pr/{number}-{slug}", "-m", message, at=merged)
        run_git(path, "branch", "--quiet", "-d", f"pr/{number}-{slug}")
    return path
