"""Sign-off policies written into a test's copy of ``config/oems.yaml``."""

from __future__ import annotations

from pathlib import Path

# two people sign each change off: Olga for QA, Pat for the product
TWO_OF_TWO = """    signoff_policy:
      approvers:
        - {name: Olga Berg, role: qa}
        - {name: Pat Kim, role: product}
      quorum: 2
"""


def with_policy(config: Path, oem: str, policy_yaml: str) -> None:
    """Give ``oem`` of the config copy ``policy_yaml`` (replacing any policy it had) as
    the last lines of its entry."""
    oems = config / "oems.yaml"
    text = oems.read_text()
    start = text.index(f"  - id: {oem}\n")
    end = text.find("\n  - id: ", start + 1)
    end = len(text) if end == -1 else end + 1
    entry = text[start:end].rstrip("\n") + "\n"
    if "signoff_policy:" in entry:
        entry = entry[: entry.index("    signoff_policy:")]
    oems.write_text(text[:start] + entry + policy_yaml + ("\n" if end < len(text) else "") + text[end:])
