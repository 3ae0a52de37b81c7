"""Invariants every strategy keeps (hypothesis).

Through ``merge_bytes`` (the API): merge(O, Y, O) == Y, merge(O, O, N) == N,
merge(O, X, X) == X (take-new/regenerate: always NEW), never a crash on arbitrary
input, and never a conflict marker in a result reported clean. Directly on each
structured strategy (without the dispatcher's shortcuts): merge(O, O, N) == N
for well-formed files, and disjoint edits merge cleanly.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overmerge.merge import STRATEGIES, has_markers, merge_bytes, render_markers
from overmerge.merge import deb822, ini, keyvalue, records, setlines
from overmerge.rules import load_rules

PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = load_rules(host_dir=None)
OPTIONS = {r.strategy: dict(r.options) for r in reversed(RULES.rules)}  # one real option set each
ALWAYS_NEW = {"take-new", "regenerate"}

# Lines that look like every format we parse, so each parser meets the others' input.
ANY_LINE = st.sampled_from([
    b"a=1", b"a=2", b"b = 3", b"Key value", b"key value2", b"x: y", b"[section]", b"[other]",
    b"Package: p", b"Package: q", b"Architecture: amd64", b"Version: 1", b" continued",
    b"root:x:0:0:root:/root:/bin/sh", b"root:x:0:0::/:/bin/false", b"alice:x:1000:1000::/home:/bin/sh",
    b"bob:x:1000:1000::/:/bin/sh", b"g:x:5:a,b", b"g:x:5:b,c", b"127.0.0.1 localhost",
    b"Match User x", b"# comment", b"", b"   ", b"\xff\xfe odd bytes", b"a\rb",
])


@st.composite
def any_file(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(ANY_LINE, max_size=12))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    data = b"".join(line + eol for line in lines)
    if data and draw(st.booleans()):
        data = data[: -len(eol)]
    return data


@given(st.sampled_from(sorted(STRATEGIES)), any_file(), any_file())
@PROPS
def test_identities(strategy: str, old: bytes, other: bytes) -> None:
    opts = OPTIONS.get(strategy, {})
    only_yours = merge_bytes(strategy, old, other, old, opts)
    only_new = merge_bytes(strategy, old, old, other, opts)
    both = merge_bytes(strategy, old, other, other, opts)
    assert only_new.merged == other and both.merged == other
    assert only_yours.merged == (old if strategy in ALWAYS_NEW else other)


@given(st.sampled_from(sorted(STRATEGIES)), any_file(), any_file(), any_file())
@PROPS
def test_no_crash_and_no_markers_when_clean(strategy: str, old: bytes, yours: bytes, new: bytes) -> None:
    result = merge_bytes(strategy, old, yours, new, OPTIONS.get(strategy, {}))
    assert result.strategy == strategy
    if result.clean:
        assert not has_markers(result.merged)
    elif not result.reason:
        assert has_markers(render_markers(result))


# --- structured strategies, called directly ------------------------------------

NAMES = [f"user{i}".encode() for i in range(12)]


@st.composite
def passwd(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=10))
    lines = []
    for n in names:
        uid = 1000 + NAMES.index(n)
        shell = draw(st.sampled_from([b"/bin/sh", b"/bin/bash", b"/usr/sbin/nologin"]))
        lines.append(b"%s:x:%d:%d::/home/%s:%s\n" % (n, uid, uid, n, shell))
    return b"".join(lines)


@given(passwd(), passwd())
@PROPS
def test_records_only_vendor_changed(old: bytes, new: bytes) -> None:
    assert records.merge(old, old, new, OPTIONS["records"]).merged == new


@given(passwd(), st.data())
@PROPS
def test_records_disjoint_edits_merge_cleanly(old: bytes, data: st.DataObject) -> None:
    lines = old.splitlines(keepends=True)
    if len(lines) < 2:
        return
    i = data.draw(st.integers(0, len(lines) - 2))
    yours = lines.copy()
    yours[i] = yours[i].replace(b":x:", b":!:")  # your change: lock the password of record i
    new = lines.copy()
    new[i + 1] = new[i + 1].rsplit(b":", 1)[0] + b":/bin/zsh\n"  # vendor: shell of record i+1
    result = records.merge(old, b"".join(yours), b"".join(new), OPTIONS["records"])
    assert result.clean
    assert result.merged == b"".join(lines[:i] + [yours[i], new[i + 1]] + lines[i + 2:])


@st.composite
def keyvalue_file(draw: st.DrawFn) -> bytes:
    keys = draw(st.lists(st.sampled_from([b"A", b"B", b"C", b"D", b"E"]), unique=True))
    out = []
    for k in keys:
        if draw(st.booleans()):
            out.append(draw(st.sampled_from([b"# note", b""])))
        out.append(k + b"=" + draw(st.sampled_from([b"1", b"2", b"yes"])))
    return b"".join(line + b"\n" for line in out)


@given(keyvalue_file(), keyvalue_file())
@PROPS
def test_keyvalue_only_vendor_changed(old: bytes, new: bytes) -> None:
    assert keyvalue.merge(old, old, new, {"syntax": "equals"}).merged == new


@given(keyvalue_file(), keyvalue_file())
@PROPS
def test_set_only_vendor_changed_and_never_conflicts(old: bytes, new: bytes) -> None:
    assert setlines.merge(old, old, new).merged == new
    assert setlines.merge(old, new, old).clean


@st.composite
def ini_file(draw: st.DrawFn) -> bytes:
    sections = draw(st.lists(st.sampled_from([b"main", b"net", b"log"]), unique=True))
    parts = [draw(keyvalue_file())]
    for s in sections:
        parts.append(b"[" + s + b"]\n" + draw(keyvalue_file()))
    return b"".join(parts)


@given(ini_file(), ini_file())
@PROPS
def test_ini_only_vendor_changed(old: bytes, new: bytes) -> None:
    assert ini.merge(old, old, new).merged == new


@st.composite
def status_file(draw: st.DrawFn) -> bytes:
    pkgs = draw(st.lists(st.sampled_from([b"libc6", b"bash", b"dash", b"vim"]), unique=True))
    stanzas = []
    for p in pkgs:
        version = draw(st.sampled_from([b"1.0", b"2.0"]))
        desc = draw(st.sampled_from([b"", b"Description: x\n more\n"]))
        stanzas.append(b"Package: %s\nStatus: install ok installed\nVersion: %s\n%s" % (p, version, desc))
    return b"\n".join(stanzas) + (b"\n" if stanzas else b"")


@given(status_file(), status_file())
@PROPS
def test_deb822_only_vendor_changed(old: bytes, new: bytes) -> None:
    assert deb822.merge(old, old, new, {"key": ["Package"]}).merged == new
