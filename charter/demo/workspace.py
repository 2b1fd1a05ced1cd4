"""The demo's workspace: the example org as the demo runs it, and its databases.

The org is the shipped Acme example (`charter init` copies the same files) with two
changes, written at the top of the file: ap-bot-2's model endpoint is stood in for by a
simulated engine (the demo needs no model server), and the vendors the month's work
names are added to the known vendors. Mid-month the demo swaps one agent's engine by
editing the file and loading it again, as a person would.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from charter.demo.truth import AGENTS_MODULE
from charter.demo.workload import PROSPECTS, SUPPLIERS
from charter.errors import InvalidInput

MARKER = ".charter-demo"
"""A file marking a directory as a demo workspace (which a new run may reuse)."""
DATABASES = ("charter.db", "round-robin")
"""What a run leaves in a workspace besides the org: the learned run's database and
the comparison run's own workspace."""
STAND_IN = {"ap-bot-2": {"kind": "python", "target": f"{AGENTS_MODULE}:invoice_clerk"}}
HEADER = """\
# The Acme example org, as `charter demo` runs it. Changed from examples/acme:
# - ap-bot-2's engine (an OpenAI-compatible endpoint) is stood in for by a simulated
#   engine, so the demo runs with no model server;
# - the vendors the simulated month names are added to resources.Vendor.items.
# Mid-month the demo swaps support-bot's engine here and loads the file again.
"""


def prepare(directory: Path, example: Path) -> Path:
    """Make `directory` a fresh demo workspace holding the example org at `example`
    (a folder with charter.yaml and policies/); return its org file.

    A directory that a previous demo made is reused (its databases are replaced); any
    other non-empty directory is refused, changing nothing."""
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"{directory} is a file: give a directory for the demo workspace")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise InvalidInput(f"{directory} is not empty and was not made by `charter demo`: "
                           "choose another --workspace (or remove it)")
    directory.mkdir(parents=True, exist_ok=True)
    for name in DATABASES:
        for found in directory.glob(f"{name}*"):
            shutil.rmtree(found) if found.is_dir() else found.unlink()
    (directory / MARKER).write_text("made by `charter demo`; a new run replaces it\n")
    return copy_org(example, directory)


def copy_org(example: Path, directory: Path) -> Path:
    """Write the demo's edition of the example org (and its policies) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(example / "policies", directory / "policies", dirs_exist_ok=True)
    org = yaml.safe_load((example / "charter.yaml").read_text(encoding="utf-8"))
    for member in org["members"]:
        if member["id"] in STAND_IN:
            member["engine"] = dict(STAND_IN[member["id"]])
    vendors: dict[str, Any] = org["resources"]["Vendor"].setdefault("items", {})
    for name in (*SUPPLIERS, *PROSPECTS):
        vendors.setdefault(name, {"frozen": False, "risk": "medium" if name in PROSPECTS
                                  else "low"})
    return _write(directory / "charter.yaml", org)


def swap_engine(org_file: Path, member: str, target: str) -> Path:
    """Give `member` the Python engine `target` in the org file (a new engine version,
    the same member); return the file."""
    org = yaml.safe_load(org_file.read_text(encoding="utf-8"))
    found = [m for m in org["members"] if m["id"] == member]
    if not found:
        raise InvalidInput(f"{org_file} has no member {member!r} to give a new engine")
    found[0]["engine"] = {"kind": "python", "target": target}
    return _write(org_file, org)


def _write(path: Path, org: dict[str, Any]) -> Path:
    text = yaml.safe_dump(org, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(HEADER + text, encoding="utf-8")
    return path
