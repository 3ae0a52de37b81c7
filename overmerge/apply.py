"""`overmerge apply`: write the new upper for NEW as a transaction (design.md §4, §6).

Steps: re-read the layers and refuse a stale plan, re-classify (deterministic),
overlay the plan's decisions, compute the merged view (overmerge.merged), lay
out the minimal new upper (what differs from NEW), write it into a staging
directory beside the destination, fsync, optionally verify it with the kernel,
and rename it into place. A journal file beside the destination makes a crash
at any point recoverable: a rerun (or rollback) finishes or cleans it.
See docs/apply.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from overmerge import fsutil, paths
from overmerge.classify import Entry
from overmerge.errors import DecisionsNeeded, InputError, StalePlanError, VerifyError
from overmerge.layers import ContentComparer, files_equal, read_bytes, read_tree
from overmerge.merged import AsideItem, MergedNode, MergedView, aside_lines, build
from overmerge.model import (
    DECIDED,
    DIR,
    FILE,
    NEEDS_DECISION,
    Node,
    Tree,
    attribute_diff,
)
from overmerge.mounts import check_not_mounted
from overmerge.plan import Manifest, Plan

Crash = Callable[[str], None]
JOURNAL_VERSION = 1


def _no_crash(_point: str) -> None:
    pass


# ---------------------------------------------------------------------------
# Loading and checking


REPLAN = "make a new plan with `overmerge plan --old OLD --new NEW --upper TOP -o PLAN.json`"


def load_plan(path: str | os.PathLike) -> Plan:
    """Read a plan file; every failure is one line naming the file and the fix."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise InputError(f"{name}: no such plan file; make one with `overmerge plan -o PLAN.json`") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a plan file; pass the PLAN.json written by `overmerge plan -o`") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read the plan: {exc.strerror}") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"{name}: not a valid plan (truncated or damaged JSON: {exc}); {REPLAN}") from exc
    try:
        return Plan.from_json(data, source=name)
    except InputError as exc:
        # Unsafe or malformed entries (e.g. an edited '../../etc/shadow'): name the file and the fix.
        message = exc.message
        if not message.startswith(f"{name}:"):
            message = f"{name}: {message}"
        if "new plan" not in message:
            message += f"; the plan is damaged or was edited by hand: {REPLAN}"
        raise InputError(message) from exc


@dataclass
class Prepared:
    """Everything apply computed before writing: the layers, the merged view, the layout."""

    plan: Plan
    layers: object
    merged: MergedView
    layout: list[tuple[bytes, str, bool]]  # (path, "dir"|"full"|"whiteout", opaque)
    namespace: str
    content_same: Callable[[MergedNode, Node], bool]


def prepare(plan: Plan, *, unresolved: str | None, rules=None) -> Prepared:
    """Re-read and check the inputs, compute the merged view and the new upper's layout."""
    from overmerge.planner import (
        DEFAULT_MAX_MERGE_SIZE,
        classify_layers,
        load_ruleset,
        read_layers,
    )
    from overmerge.rules import merge_with_rule

    roots = {role: os.fsencode(rec.path) for role, rec in plan.inputs.items()}
    for role, name in (("old", "OLD"), ("new", "NEW"), ("upper", "TOP")):
        check_not_mounted(os.path.realpath(roots[role]), name)
    layers = read_layers(roots["old"], roots["new"], roots["upper"])
    check_inputs(plan, layers.manifests, roots["upper"])

    options = plan.options or {}
    max_size = int(options.get("max_merge_size", DEFAULT_MAX_MERGE_SIZE))
    if rules is None:  # callers applying many plans may pass the rules loaded once
        rules = load_ruleset([Path(d) for d in options.get("rules", [])])
    entries = classify_layers(layers, rules=rules, checksum=bool(options.get("checksum", False)), max_size=max_size)
    _overlay_decisions(plan, entries)

    open_conflicts = [e for e in entries if e.resolution == NEEDS_DECISION]
    if open_conflicts and unresolved is None:
        first = paths.display(open_conflicts[0].path)
        raise DecisionsNeeded(
            f"{len(open_conflicts)} conflict(s) need a decision (first: {first}); "
            "decide them with `overmerge resolve`, or pass --unresolved keep-user|take-new"
        )
    planned = plan.by_path()
    comparer = ContentComparer(checksum=True)

    def remerge(path: bytes, e: Entry, o: Node | None, y: Node, n: Node) -> bytes:
        rule = rules.match(os.fsdecode(path))
        sides = [read_bytes(x, max_size) if x is not None else b"" for x in (o, y, n)]
        result = None if any(s is None for s in sides) else merge_with_rule(rule, *sides, max_size=max_size)
        data = result.merged if result is not None else None
        want = planned[path].merged_sha256 if path in planned else e.merged_sha256
        if data is None or hashlib.sha256(data).hexdigest() != want:
            raise StalePlanError(
                f"{paths.display(path)}: rules changed since the plan was made (the merge result differs); "
                "run `overmerge plan` again"
            )
        return data

    merged = build(layers.old, layers.new, layers.view, entries,
                   same=comparer.same, remerge=remerge, unresolved=unresolved)

    def content_same(m: MergedNode, n: Node) -> bool:
        if n.kind != FILE or m.node.kind != FILE:
            return True
        if m.content is not None:
            if n.size != len(m.content):
                return False
            return read_bytes(n, len(m.content)) == m.content
        return comparer.same(m.node, n)

    layout = compute_layout(merged, layers.new, content_same)
    namespace = plan.inputs["upper"].namespace or layers.view.namespace or "trusted"
    return Prepared(plan, layers, merged, layout, namespace, content_same)


def _without_root(manifest: Manifest) -> Manifest:
    return Manifest(tuple((p, fp) for p, fp in manifest.items if p != b""))


def check_inputs(plan: Plan, manifests: dict[str, Manifest], top: bytes) -> None:
    """Refuse (StalePlanError) when a layer changed since the plan was made.

    One case gets its own message because "run `overmerge plan` again" would be
    wrong advice there: this plan was already applied in place (TOP is now the new
    upper for NEW; planning it against OLD again would treat the merge as your changes).
    (The manifests leave out the root's ctime, so a rollback that renamed TOP back is no change.)"""
    for role in ("old", "new", "upper"):
        rec = plan.inputs[role]
        seen = manifests[role]
        if seen.digest() == rec.manifest.digest():
            continue
        if role == "upper":
            prev = top + b".overmerge-prev"
            if os.path.isdir(prev) and not os.path.islink(prev):
                from overmerge.layers import read_upper

                prev_manifest: list[tuple[bytes, bytes]] = []
                try:
                    read_upper(prev, manifest=prev_manifest)
                except InputError:
                    prev_manifest = []
                if prev_manifest and (_without_root(Manifest(tuple(prev_manifest))).digest()
                                      == _without_root(rec.manifest).digest()):
                    raise StalePlanError(
                        f"{rec.path}: this plan was already applied in place (the TOP it was made from is now "
                        f"{os.fsdecode(prev)}); {rec.path} is the new upper for NEW: mount it over NEW, "
                        f"or undo with `overmerge rollback {rec.path}` — do not plan it against OLD again"
                    )
        rec.check_same(seen)  # names the first changed path


def _overlay_decisions(plan: Plan, entries: list[Entry]) -> None:
    """The plan's decisions win over the fresh classification; a changed verdict is a stale plan."""
    planned = plan.by_path()
    for e in entries:
        p = planned.get(e.path)
        if p is None:
            continue
        if p.resolution == DECIDED and p.decision is not None:
            if e.cls != "conflict":
                raise StalePlanError(
                    f"{paths.display(e.path)}: the plan decides a conflict that is no longer one; run `overmerge plan` again"
                )
            e.resolution, e.decision = DECIDED, p.decision
        elif (p.cls, p.resolution) != (e.cls, e.resolution):
            raise StalePlanError(
                f"{paths.display(e.path)}: classified {e.cls}/{e.resolution} now but {p.cls}/{p.resolution} in the plan "
                "(rules changed since the plan was made); run `overmerge plan` again"
            )


# ---------------------------------------------------------------------------
# Layout: what the new upper holds (only what differs from NEW)


def compute_layout(merged: MergedView, new: Tree, content_same: Callable[[MergedNode, Node], bool]) -> list[tuple[bytes, str, bool]]:
    """Pre-order list of (path, op, opaque). op: "dir" (directory with merged metadata),
    "full" (a complete entry), "whiteout" (0/0 char device)."""
    nodes = merged.nodes
    children = merged.children()

    def equal(p: bytes) -> bool:
        m, n = nodes[p], new.nodes[p]
        return not attribute_diff(m.node, n, lambda a, b: content_same(m, b))

    ops: list[tuple[bytes, str, bool]] = []
    has_ops: set[bytes] = set()  # directories below which something was emitted

    def emit(p: bytes, op: str, opaque: bool = False) -> None:
        ops.append((p, op, opaque))
        if p:
            has_ops.add(paths.parent_of(p))

    # An explicit stack, not recursion: very deep trees must work. A directory over a
    # NEW directory is revisited after its children ("done") to see whether it is needed.
    stack: list[tuple[bytes, bool, bool]] = [(b"", False, False)]
    while stack:
        p, full, done = stack.pop()
        if done:
            if p in has_ops or not p or not equal(p):
                emit(p, "dir")
            continue
        m = nodes[p].node
        n = new.nodes.get(p)
        if m.kind != DIR:
            if full or n is None or not equal(p):
                emit(p, "full")
            continue
        kids = [paths.join(p, c) for c in children.get(p, [])]
        if full or n is None or n.kind != DIR:
            emit(p, "dir")
            stack.extend((k, True, False) for k in kids)
            continue
        gone = [paths.join(p, c) for c in new.children.get(p, []) if paths.join(p, c) not in nodes]
        kept = any(q in nodes and equal(q) for q in (paths.join(p, c) for c in new.children.get(p, [])))
        if p and gone and not kept:
            # The merged view replaces NEW's directory wholesale: opaque, no whiteouts inside.
            emit(p, "dir", True)
            stack.extend((k, True, False) for k in kids)
            continue
        for q in gone:
            emit(q, "whiteout")
        stack.append((p, False, True))
        stack.extend((k, False, False) for k in kids)

    # Pre-order by path keeps parents before children.
    ops.sort(key=lambda op: _path_key(op[0]))
    return ops


def _path_key(path: bytes) -> tuple[bytes, ...]:
    return tuple(path.split(b"/")) if path else ()


# ---------------------------------------------------------------------------
# Writing


@dataclass
class WriteStats:
    dirs: int = 0
    files: int = 0
    other: int = 0
    whiteouts: int = 0
    opaque: int = 0
    hardlinks: int = 0

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _abs(root: bytes, rel: bytes) -> bytes:
    return root + b"/" + rel if rel else root


def write_upper(stage: bytes, prepared: Prepared, crash: Crash = _no_crash) -> WriteStats:
    """Write the new upper into ``stage`` (which must not exist)."""
    stats = WriteStats()
    merged = prepared.merged.nodes
    opaque_name = prepared.namespace + ".overlay.opaque"
    links: dict[tuple, bytes] = {}
    dirs: list[tuple[bytes, Node]] = []
    for rel, op, opaque in prepared.layout:
        target = _abs(stage, rel)
        if not rel:  # the staging directory itself is the upper's root
            fsutil.set_meta(target, merged[rel].node, mtime=False)
            dirs.append((target, merged[rel].node))
            continue
        if op == "whiteout":
            # Dated like the NEW entry it hides, so a rerun writes the same bytes.
            fsutil.make_whiteout(target, prepared.layers.new.nodes[rel].mtime_ns)
            stats.whiteouts += 1
        else:
            m = merged[rel]
            node = m.node
            key = None
            if node.kind == FILE and m.content is None and node.inode is not None and node.nlink > 1:
                key = (node.inode, node.uid, node.gid, node.mode, node.xattrs)
            if key is not None and key in links:
                fsutil.link(links[key], target)
                stats.hardlinks += 1
            else:
                fsutil.create_entry(target, node, m.content)
                _keep_protattr(prepared, rel, node, m, target)
                if key is not None:
                    links[key] = target
                if node.kind == DIR:
                    stats.dirs += 1
                    dirs.append((target, node))
                elif node.kind == FILE:
                    stats.files += 1
                else:
                    stats.other += 1
            if opaque:
                os.setxattr(target, opaque_name, b"y", follow_symlinks=False)
                stats.opaque += 1
        crash("write")
    for path, node in reversed(dirs):
        fsutil.finish_dir(path, node)
    fsutil.fsync_dirs(stage)
    return stats


def _keep_protattr(prepared: Prepared, rel: bytes, node: Node, m: MergedNode, target: bytes) -> None:
    """Carry ``overlay.protattr`` (chattr +i / +a made through the mount) from TOP for
    entries taken from the user view: the kernel keeps those flags only there."""
    if m.content is not None or prepared.layers.view.tree.nodes.get(rel) is not node:
        return
    source = prepared.layers.roots["upper"] + b"/" + rel
    try:
        st = os.lstat(source)
        if node.inode is not None and node.inode != (st.st_dev, st.st_ino):
            return
        name = prepared.namespace + ".overlay.protattr"
        value = os.getxattr(source, name, follow_symlinks=False)
    except OSError:
        return
    os.setxattr(target, name, value, follow_symlinks=False)


def write_aside(aside: bytes, items: list[AsideItem], crash: Crash = _no_crash) -> None:
    """Save the sides not taken as full entries under ``aside/<side>/<path>``, plus list.json."""
    os.mkdir(aside, 0o700)
    listing = []
    for item in items:
        target = aside + b"/" + item.side.encode() + b"/" + item.path
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if os.path.lexists(target):
            continue
        fsutil.create_entry(target, item.node, item.content)
        entry = paths.to_json(item.path)
        entry.update(side=item.side, kind=item.node.kind, reason=item.reason)
        listing.append(entry)
        crash("aside")
    data = json.dumps({"aside": listing}, indent=2, ensure_ascii=False) + "\n"
    fd = os.open(aside + b"/list.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    fsutil.fsync_dirs(aside)


# ---------------------------------------------------------------------------
# Verify: the kernel is the judge


def compare_view(kernel: Tree, merged: MergedView) -> list[str]:
    """Differences between a walked tree (the kernel's view) and the merged view."""
    problems: list[str] = []
    want = merged.nodes
    for p in sorted(want.keys() | kernel.nodes.keys()):
        shown = paths.display(p) or "/"
        m = want.get(p)
        k = kernel.nodes.get(p)
        if m is None:
            problems.append(f"{shown}: present in the mount, absent from the merged view")
            continue
        if k is None:
            problems.append(f"{shown}: absent from the mount, a {m.node.kind} in the merged view")
            continue
        node = m.node
        if node.kind != k.kind:
            problems.append(f"{shown}: a {k.kind} in the mount, a {node.kind} in the merged view")
            continue
        for attr in ("mode", "uid", "gid", "xattrs", "target", "rdev"):
            if attr == "mode" and node.kind == "symlink":
                continue
            if getattr(node, attr) != getattr(k, attr):
                problems.append(f"{shown}: {attr} {getattr(k, attr)!r} in the mount, {getattr(node, attr)!r} merged")
        if node.kind == FILE:
            assert k.source is not None
            if m.content is not None:
                same = k.size == len(m.content) and read_bytes(k, len(m.content)) == m.content
            else:
                assert node.source is not None
                same = files_equal(node.source, k.source)
            if not same:
                problems.append(f"{shown}: content in the mount differs from the merged view")
    return problems


def kernel_view(upper: bytes, new: bytes, namespace: str, check: Callable[[Tree], object],
                mount_parent: bytes | None = None) -> object:
    """Mount ``lowerdir=UPPER:NEW`` read-only on a private temporary mount point (made in
    ``mount_parent``, default the system temp dir), walk it, hand the tree to ``check``
    while mounted; always unmount."""
    from overmerge.mounts import overlay

    options = ["userxattr"] if namespace == "user" else []
    mnt = tempfile.mkdtemp(prefix="overmerge-verify-", dir=os.fsdecode(mount_parent) if mount_parent else None)
    try:
        with overlay([upper, new], mnt, options=options, readonly=True):
            return check(read_tree(os.fsencode(mnt)))
    finally:
        os.rmdir(mnt)


def verify(upper: bytes, prepared: Prepared) -> None:
    problems = kernel_view(upper, prepared.layers.roots["new"], prepared.namespace,
                           lambda tree: compare_view(tree, prepared.merged))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise VerifyError(f"the kernel's view of NEW + new upper differs from the merged view: {problems[0]}{more}; "
                          "nothing was changed — please report this")


# ---------------------------------------------------------------------------
# The transaction


@dataclass
class ApplyResult:
    mode: str  # "output" or "in-place"
    target: str
    stats: WriteStats = field(default_factory=WriteStats)
    aside: str | None = None
    aside_items: list[AsideItem] = field(default_factory=list)
    restored: list[bytes] = field(default_factory=list)
    previous: str | None = None
    verified: bool = False
    recovered: str | None = None  # "finished" / "cleaned" when a half-done apply was found

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "target": self.target,
            "written": self.stats.to_json(),
            "aside": self.aside,
            "aside_items": [dict(paths.to_json(i.path), side=i.side, reason=i.reason) for i in self.aside_items],
            "restored_parents": [paths.to_json(p) for p in self.restored],
            "previous": self.previous,
            "verified": self.verified,
            "recovered": self.recovered,
        }


class Transaction:
    """Names beside the destination, all on its filesystem, and the journal that ties them."""

    def __init__(self, target: bytes, mode: str, workdir: bytes | None = None) -> None:
        self.target = target.rstrip(b"/")
        self.mode = mode
        self.workdir = workdir
        self.stage = self.target + b".overmerge-stage"
        self.aside_stage = self.target + b".overmerge-aside-stage"
        self.prev = self.target + b".overmerge-prev"
        self.journal = self.target + b".overmerge-journal"

    # -- journal ----------------------------------------------------------------

    def read_journal(self) -> dict | None:
        try:
            with open(self.journal, "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise InputError(f"{os.fsdecode(self.journal)}: unreadable apply journal ({exc}); "
                             "inspect it and the .overmerge-* directories beside it, then remove it") from exc

    def write_journal(self, data: dict) -> None:
        fsutil.write_atomic(self.journal, json.dumps(data, indent=2) + "\n")
        fsutil.fsync_path(os.path.dirname(self.journal) or b".")

    def remove_journal(self) -> None:
        os.unlink(self.journal)
        fsutil.fsync_path(os.path.dirname(self.journal) or b".")

    def free_aside_name(self) -> bytes:
        base = self.target + b".overmerge-aside"
        if not os.path.lexists(base):
            return base
        n = 1
        while os.path.lexists(base + b".%d" % n):
            n += 1
        return base + b".%d" % n

    # -- recovery ---------------------------------------------------------------

    def recover(self, crash: Crash = _no_crash) -> str | None:
        """Finish ("finished") or clean ("cleaned") a half-done apply; None if there was none."""
        journal = self.read_journal()
        if journal is None:
            # Leftovers without a journal never got past staging.
            for leftover in (self.stage, self.aside_stage):
                if os.path.lexists(leftover):
                    fsutil.remove_tree(leftover)
            return None
        if journal.get("phase") != "staged":
            fsutil.remove_tree(self.stage)
            fsutil.remove_tree(self.aside_stage)
            self.remove_journal()
            return "cleaned"
        self.commit(journal, crash)
        return "finished"

    # -- commit -----------------------------------------------------------------

    def commit(self, journal: dict, crash: Crash = _no_crash) -> None:
        """Move the staged new upper (and aside dir) into place; idempotent, so a rerun
        after a crash anywhere in here completes it."""
        parent = os.path.dirname(self.target) or b"."
        if self.mode == "output":
            if os.path.lexists(self.stage):
                os.rename(self.stage, self.target)  # the commit point
                fsutil.fsync_path(parent)
                crash("commit")
        else:
            stage_ino = tuple(journal["stage_ino"])
            try:
                st = os.lstat(self.target)
                target_ino: tuple | None = (st.st_dev, st.st_ino)
            except FileNotFoundError:
                target_ino = None
            if target_ino != stage_ino:
                if target_ino is None:  # half-way through the fallback: prev holds the old TOP
                    os.rename(self.stage, self.target)
                elif not fsutil.exchange(self.stage, self.target):  # the commit point
                    fsutil.remove_tree(self.prev)  # only one level of rollback is kept
                    os.rename(self.target, self.prev)
                    crash("commit-half")
                    os.rename(self.stage, self.target)
                fsutil.fsync_path(parent)
                crash("commit")
            if os.path.lexists(self.stage):  # after the exchange it holds the previous TOP
                fsutil.remove_tree(self.prev)  # only one level of rollback is kept
                crash("old-prev")
                os.rename(self.stage, self.prev)
                fsutil.fsync_path(parent)
                crash("prev")
            if self.workdir is None and journal.get("workdir"):
                self.workdir = os.fsencode(journal["workdir"])
            if self.workdir is not None and os.path.isdir(self.workdir):
                fsutil.empty_dir(self.workdir)
                crash("workdir")
        aside = journal.get("aside")
        if aside and os.path.lexists(self.aside_stage):
            os.rename(self.aside_stage, os.fsencode(aside))
            fsutil.fsync_path(parent)
            crash("aside-commit")
        self.remove_journal()


def apply(
    plan: Plan,
    *,
    output: bytes | None = None,
    in_place: bool = False,
    workdir: bytes | None = None,
    unresolved: str | None = None,
    verify_with_kernel: bool = False,
    crash: Crash = _no_crash,
    rules=None,
) -> ApplyResult:
    """Apply a plan: write the new upper to ``output``, or replace TOP ``in_place``."""
    if (output is None) == (not in_place):
        raise InputError("apply needs exactly one of --output DIR and --in-place")
    top = os.path.realpath(os.fsencode(plan.inputs["upper"].path))
    if in_place:
        target = top
        mode = "in-place"
        if os.path.ismount(top):
            raise InputError(f"{os.fsdecode(top)}: TOP is a mount point and cannot be replaced by a rename; "
                             "use --output DIR and switch the mount to DIR")
    else:
        assert output is not None
        output = output.rstrip(b"/") or output
        parent = os.path.realpath(os.path.dirname(os.path.abspath(output)))
        if not os.path.isdir(parent):
            raise InputError(f"{os.fsdecode(output)}: parent directory does not exist; create it first")
        target = os.path.join(parent, os.path.basename(os.path.abspath(output)))
        mode = "output"
    if workdir is not None:
        if not in_place:
            raise InputError("--workdir is only used with --in-place (it is TOP's overlay workdir)")
        workdir = os.path.realpath(workdir)
        if not os.path.isdir(workdir):
            raise InputError(f"{os.fsdecode(workdir)}: --workdir is not a directory")
        if paths.overlaps(workdir, target):
            raise InputError(f"{os.fsdecode(workdir)}: --workdir overlaps TOP {os.fsdecode(target)}; "
                             "pass the overlay's own workdir")
        check_not_mounted(workdir, "the workdir")
    check_not_mounted(target, "the output" if mode == "output" else "TOP")
    with fsutil.dir_lock(os.path.dirname(target) or b"."):
        return _apply_locked(plan, target, mode, in_place, workdir, unresolved, verify_with_kernel, crash, rules)


def _apply_locked(plan: Plan, target: bytes, mode: str, in_place: bool, workdir: bytes | None,
                  unresolved: str | None, verify_with_kernel: bool, crash: Crash, rules) -> ApplyResult:
    txn = Transaction(target, mode, workdir)
    recovered = txn.recover(crash)
    if recovered == "finished":
        return ApplyResult(mode, os.fsdecode(target), recovered=recovered,
                           previous=os.fsdecode(txn.prev) if in_place else None)

    if mode == "output":
        for role, name in (("old", "OLD"), ("new", "NEW"), ("upper", "TOP")):
            root = os.path.realpath(os.fsencode(plan.inputs[role].path))
            if paths.overlaps(root, target):
                raise InputError(
                    f"{os.fsdecode(target)}: the output overlaps {name} {os.fsdecode(root)}; "
                    "choose an output directory outside the input layers"
                )
        if os.path.lexists(target):
            if not os.path.isdir(target) or os.path.islink(target) or os.listdir(target):
                raise InputError(f"{os.fsdecode(target)}: already exists and is not an empty directory; "
                                 "choose a new --output directory or remove it")

    prepared = prepare(plan, unresolved=unresolved, rules=rules)
    aside_items = prepared.merged.aside
    aside_final = txn.free_aside_name() if aside_items else None

    journal = {
        "version": JOURNAL_VERSION,
        "mode": mode,
        "phase": "staging",
        "target": os.fsdecode(target),
        "aside": os.fsdecode(aside_final) if aside_final else None,
        "workdir": os.fsdecode(workdir) if workdir else None,
    }
    txn.write_journal(journal)
    crash("journal")
    verified = False
    try:
        os.mkdir(txn.stage, 0o700)
        stats = write_upper(txn.stage, prepared, crash)
        if aside_items:
            write_aside(txn.aside_stage, aside_items, crash)
        fsutil.fsync_path(os.path.dirname(target) or b".")
        crash("staged")
        if verify_with_kernel:
            verify(txn.stage, prepared)
            verified = True
    except BaseException as exc:
        # Before the commit point: take the staging away again, nothing was changed.
        fsutil.remove_tree(txn.stage)
        fsutil.remove_tree(txn.aside_stage)
        txn.remove_journal()
        if isinstance(exc, OSError):
            where = os.fsdecode(exc.filename) if exc.filename else os.fsdecode(target)
            raise fsutil.WriteError(f"{where}: {exc.strerror or exc}; nothing was changed") from exc
        raise
    st = os.lstat(txn.stage)
    journal.update(phase="staged", stage_ino=[st.st_dev, st.st_ino])
    txn.write_journal(journal)
    crash("journal-staged")
    try:
        txn.commit(journal, crash)
    except OSError as exc:
        where = os.fsdecode(exc.filename) if exc.filename else os.fsdecode(target)
        raise fsutil.WriteError(f"{where}: {exc.strerror or exc}; the new upper is staged beside "
                                f"{os.fsdecode(target)} — fix the cause and run the same command again to finish") from exc
    return ApplyResult(
        mode, os.fsdecode(target), stats,
        aside=os.fsdecode(aside_final) if aside_final else None,
        aside_items=aside_items,
        restored=prepared.merged.restored,
        previous=os.fsdecode(txn.prev) if in_place else None,
        verified=verified,
    )


def rollback(top: bytes, *, workdir: bytes | None = None, crash: Crash = _no_crash) -> str:
    """Put the previous TOP back (swap TOP and TOP.overmerge-prev); returns what was done."""
    top = os.path.realpath(top)
    check_not_mounted(top, "TOP")
    if workdir is not None:
        workdir = os.path.realpath(workdir)
        check_not_mounted(workdir, "the workdir")
    with fsutil.dir_lock(os.path.dirname(top) or b"."):
        try:
            return _rollback_locked(top, workdir, crash)
        except OSError as exc:
            where = os.fsdecode(exc.filename) if exc.filename else os.fsdecode(top)
            raise fsutil.WriteError(f"{where}: cannot roll back: {exc.strerror or exc}") from exc


def _rollback_locked(top: bytes, workdir: bytes | None, crash: Crash) -> str:
    txn = Transaction(top, "in-place", workdir)
    journal = txn.read_journal()
    if journal is not None and journal.get("phase") != "staged":
        txn.recover(crash)
        return "an interrupted apply never took effect; cleaned it up — TOP is unchanged"
    if journal is not None:
        txn.recover(crash)
    if not os.path.isdir(txn.prev) or os.path.islink(txn.prev):
        raise InputError(f"{os.fsdecode(txn.prev)}: no previous TOP to roll back to "
                         "(only `overmerge apply --in-place` keeps one)")
    if not fsutil.exchange(txn.prev, top):
        # No atomic swap: go through a journal-free three-step rename.
        tmp = top + b".overmerge-rollback"
        os.rename(top, tmp)
        os.rename(txn.prev, top)
        os.rename(tmp, txn.prev)
    fsutil.fsync_path(os.path.dirname(top) or b".")
    crash("rollback")
    if workdir is not None:
        fsutil.empty_dir(workdir)
    return f"restored the previous TOP; the replaced one is now {os.fsdecode(txn.prev)} (roll back again to undo)"


def render_text(result: ApplyResult) -> str:
    lines = []
    if result.recovered == "finished":
        lines.append(f"finished an interrupted apply: {result.target} is the new upper")
        if result.previous:
            lines.append(f"previous TOP kept at {result.previous}")
        return "\n".join(lines) + "\n"
    s = result.stats
    where = "replaced TOP" if result.mode == "in-place" else "wrote the new upper"
    lines.append(f"{where}: {result.target}")
    lines.append(f"  {s.files} file(s), {s.dirs} dir(s), {s.other} other, {s.hardlinks} hard link(s), "
                 f"{s.whiteouts} whiteout(s), {s.opaque} opaque dir(s)")
    if result.recovered == "cleaned":
        lines.append("  (cleaned up an interrupted earlier apply first)")
    if result.previous:
        lines.append(f"previous TOP kept at {result.previous} (undo: overmerge rollback {result.target})")
    for p in result.restored:
        lines.append(f"  restored directory {paths.display(p)} to hold paths that are kept")
    if result.aside:
        lines += aside_lines(result.aside, result.aside_items)
    if result.verified:
        lines.append("verified: the kernel's view of NEW + new upper equals the merged view")
    return "\n".join(lines) + "\n"


__all__ = ["ApplyResult", "Transaction", "apply", "compare_view", "compute_layout", "kernel_view",
           "load_plan", "prepare", "rollback", "verify", "write_upper", "render_text"]

