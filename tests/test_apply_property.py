"""Property test: random OLD / NEW trees and a TOP made through a real overlay mount.

For every example: the kernel's view of NEW + new upper equals overmerge's merged view
(apply --verify does that comparison); paths only you changed look as you left them;
paths only the vendor changed look as in NEW; and a second apply changes nothing —
planning NEW as OLD with the new upper as TOP finds no conflict, and applying that plan
writes the same new upper again.
"""
from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from applyhelp import kernel_tree, snapshot
from casebuild import build_case
from overlayfs import FULL_FEATURES, requires_root

pytestmark = [requires_root, pytest.mark.root]

FILES = ["etc/a", "etc/b", "etc/sub/c", "etc/sub/d", "usr/e", "usr/lib/f"]
CONTENTS = ["1\n", "2\n", "x\n"]
VENDOR_OPS = ["keep", "keep", "modify", "delete", "chmod"]
USER_OPS = ["keep", "keep", "edit", "rm", "chmod", "chown"]
EXTRA_USER = [
    "rm -rf etc/sub && mkdir etc/sub && echo mine > etc/sub/m",
    "mkdir -p usr/new && echo mine > usr/new/m",
    "ln -sfn ../etc/a usr/link",
    "echo made > etc/made && ln etc/made etc/made2",
    "rm -rf usr/lib",
    "mv etc/sub etc/sub2",
    "mkfifo usr/fifo",
]
EXTRA_VENDOR = ["etc/sub/vendor", "usr/new/vendor", "etc/made", "usr/lib/g"]


@st.composite
def scenario(draw):
    old = draw(st.dictionaries(st.sampled_from(FILES), st.sampled_from(CONTENTS), min_size=2))
    new: dict = {}
    for path, content in old.items():
        op = draw(st.sampled_from(VENDOR_OPS))
        if op == "keep":
            new[path] = content
        elif op == "modify":
            new[path] = content + "vendor\n"
        elif op == "chmod":
            new[path] = {"content": content, "mode": 0o600}
    for path in draw(st.lists(st.sampled_from(EXTRA_VENDOR), unique=True, max_size=2)):
        if not any(p.startswith(path + "/") or path.startswith(p + "/") for p in new):
            new[path] = "vendor-added\n"
    lines = []
    for path in old:
        op = draw(st.sampled_from(USER_OPS))
        cmd = {"keep": None, "edit": f"echo user >> {path}", "rm": f"rm {path}",
               "chmod": f"chmod 640 {path}", "chown": f"chown 1000:1000 {path}"}[op]
        if cmd:
            lines.append(cmd)
    lines += draw(st.lists(st.sampled_from(EXTRA_USER), unique=True, max_size=3))
    draw(st.randoms()).shuffle(lines)
    script = "".join(f"{{ {line}; }} 2>/dev/null || true\n" for line in lines)
    options = draw(st.sampled_from([[], ["redirect_dir=on"], list(FULL_FEATURES), ["userxattr"]]))
    policy = draw(st.sampled_from(["keep-user", "take-new"]))
    return {"old": old, "new": new or {"etc/placeholder": ""}, "user": script, "mount_options": options}, policy


_counter = itertools.count()
_RULES: list = []


def _rules():
    from overmerge.planner import load_ruleset

    if not _RULES:
        _RULES.append(load_ruleset())
    return _RULES[0]


@settings(database=None, max_examples=int(os.environ.get("OVERMERGE_PROPERTY_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario())
def test_apply_properties(tmp_path: Path, example) -> None:
    from overmerge.apply import apply, compare_view, prepare
    from overmerge.planner import make_plan

    spec, policy = example
    base = Path(tempfile.mkdtemp(dir=tmp_path, prefix=f"ex{next(_counter)}-"))
    layers = build_case(spec, base)
    rules = _rules()
    plan = make_plan(layers.old, layers.new, layers.upper, rules=rules)
    prepared = prepare(plan, unresolved=policy, rules=rules)
    out = base / "newupper"
    result = apply(plan, output=os.fsencode(out), unresolved=policy, verify_with_kernel=True, rules=rules)
    assert result.verified

    view = prepared.layers.view.tree.nodes
    new_nodes = prepared.layers.new.nodes
    from overmerge.layers import ContentComparer
    from overmerge.model import attribute_diff

    same = ContentComparer(checksum=True).same

    def check(tree):
        problems = compare_view(tree, prepared.merged)
        for e in plan.entries:
            if e.path in prepared.merged.restored or any(e.path == a.path for a in prepared.merged.aside):
                continue
            want = {"user-modified": view, "upstream-changed": new_nodes}.get(e.cls)
            if want is None:
                continue
            w, k = want.get(e.path), tree.nodes.get(e.path)
            if (w is None) != (k is None) or (w is not None and attribute_diff(w, k, same)):
                problems.append(f"{e.path!r} ({e.cls}) looks different in the mount")
        return problems

    problems = kernel_tree(out, layers.new, "user" if layers.userxattr else "trusted", check)
    assert not problems, (spec, policy, problems)

    # A second apply changes nothing.
    again = make_plan(layers.new, layers.new, out, rules=rules)
    assert not [e for e in again.entries if e.cls in ("conflict", "upstream-changed")], [
        (e.path, e.cls, e.reason) for e in again.entries if e.cls in ("conflict", "upstream-changed")]
    out2 = base / "newupper2"
    apply(again, output=os.fsencode(out2), rules=rules)
    assert snapshot(out2) == snapshot(out)
