"""records strategy details not covered by the golden cases."""
from __future__ import annotations

from overmerge.merge import merge_bytes, render_markers
from overmerge.merge.records import merge_set
from overmerge.rules import load_rules

RULES = {r.name: r for r in load_rules(host_dir=None).rules}


def rule_merge(name: str, old: bytes, yours: bytes, new: bytes):
    rule = RULES[name]
    return merge_bytes(rule.strategy, old, yours, new, rule.options)


def test_set_merge_keeps_new_order_then_your_additions() -> None:
    assert merge_set([b"a", b"b"], [b"b", b"c"], [b"a", b"b", b"d"]) == [b"b", b"d", b"c"]
    assert merge_set(None, [b"x", b"y"], [b"y", b"z"]) == [b"y", b"z", b"x"]  # add/add: union


def test_group_member_removed_by_you_stays_removed() -> None:
    old = b"audio:x:29:pulse,alice\n"
    result = rule_merge("group", old, b"audio:x:29:pulse\n", b"audio:x:29:pulse,alice,bob\n")
    assert result.merged == b"audio:x:29:pulse,bob\n"


def test_uid_collision_note_names_both_and_resolves_either_way() -> None:
    old = b"root:x:0:0::/root:/bin/sh\n"
    result = rule_merge("passwd", old, old + b"alice:x:1001:1001::/home/alice:/bin/sh\n",
                        old + b"_apt:x:1001:65534::/nonexistent:/usr/sbin/nologin\n")
    (hunk,) = result.hunks
    assert hunk.note == "uid 1001 used by alice (your change) and by _apt (vendor update)"
    assert hunk.yours == (b"alice:x:1001:1001::/home/alice:/bin/sh\n",)
    assert hunk.new == (b"_apt:x:1001:65534::/nonexistent:/usr/sbin/nologin\n",)
    assert b"|||||||" in render_markers(result)


def test_existing_duplicate_uids_are_not_new_conflicts() -> None:
    # root and toor share uid 0 in OLD already: that is the admin's business, not a merge conflict.
    old = b"root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n"
    result = rule_merge("passwd", old, old.replace(b"/bin/sh\ntoor", b"/bin/bash\ntoor"),
                        old + b"_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n")
    assert result.clean


def test_duplicate_key_falls_back_to_text_with_a_note() -> None:
    old = b"a:x:1:1::/:/bin/sh\na:x:2:2::/:/bin/sh\n"
    result = rule_merge("passwd", old, old + b"b:x:3:3::/:/bin/sh\n", old)
    assert result.merged == old + b"b:x:3:3::/:/bin/sh\n"  # shortcut: only you changed it
    # Untouched duplicates pass through; once one of them changes, the file is merged as text.
    result = rule_merge("passwd", old, old + b"b:x:3:3::/:/bin/sh\n", b"c:x:4:4::/:/bin/sh\n" + old)
    assert result.clean and result.merged == b"c:x:4:4::/:/bin/sh\n" + old + b"b:x:3:3::/:/bin/sh\n"
    result = rule_merge("passwd", old, old.replace(b"2:2::/:", b"2:2::/srv:"), b"c:x:4:4::/:/bin/sh\n" + old)
    assert result.merged == b"c:x:4:4::/:/bin/sh\na:x:1:1::/:/bin/sh\na:x:2:2::/srv:/bin/sh\n"
    # Once two lines with the same key change, keys no longer tell records apart: text.
    old += b"m:x:5:5::/:/bin/sh\nz:x:6:6::/:/bin/sh\n"
    yours = old.replace(b"2:2::/:", b"2:2::/srv:").replace(b"1:1::/:", b"1:1::/opt:")
    result = rule_merge("passwd", old, yours, old.replace(b"6:6::/:", b"6:6::/z:"))
    assert result.clean and "duplicate account a" in result.notes[0]
    assert result.merged == yours.replace(b"6:6::/:", b"6:6::/z:")


def test_whitespace_records_keep_your_alignment_when_fields_combine() -> None:
    old = b"UUID=1  /srv   ext4  defaults  0  2\n"
    yours = b"UUID=1  /srv   ext4  noatime   0  2\n"
    new = b"UUID=2  /srv   ext4  defaults  0  2\n"
    assert rule_merge("fstab", old, yours, new).merged == b"UUID=2  /srv   ext4  noatime   0  2\n"


def test_hosts_names_are_a_set_and_first_name_kept() -> None:
    old = b"127.0.1.1\tbox\n"
    result = rule_merge("hosts", old, b"127.0.1.1\tbox.example.org box\n", b"127.0.1.1\tbox box-vendor\n")
    assert result.merged == b"127.0.1.1\tbox box-vendor box.example.org\n"


def test_shadow_keeps_your_password_but_takes_vendor_aging() -> None:
    old = b"root:*:19000:0:99999:7:::\n"
    result = rule_merge("shadow", old, b"root:$6$salt$hash:19500:0:99999:7:::\n",
                        b"root:!:19600:0:90:7:::\n")
    assert result.merged == b"root:$6$salt$hash:19500:0:90:7:::\n"


def test_subuid_ranges_merge_by_owner() -> None:
    old = b"alice:100000:65536\n"
    result = rule_merge("subids", old, old + b"bob:165536:65536\n", old.replace(b"65536", b"65537"))
    assert result.merged == b"alice:100000:65537\nbob:165536:65536\n"


def test_large_records_merge_is_linear_enough() -> None:
    lines = [b"u%d:x:%d:%d::/home/u%d:/bin/sh\n" % (i, i + 1000, i + 1000, i) for i in range(20000)]
    yours, new = list(lines), list(lines)
    yours[10] = yours[10].replace(b"/bin/sh", b"/bin/bash")
    new[19000] = new[19000].replace(b"/bin/sh", b"/bin/zsh")
    result = rule_merge("passwd", b"".join(lines), b"".join(yours) + b"me:x:99:99::/:/bin/sh\n", b"".join(new))
    assert result.clean and result.merged.endswith(b"me:x:99:99::/:/bin/sh\n")


def test_conflict_line_numbers_are_real() -> None:
    old = b"".join(b"u%d:x:%d:%d::/:/bin/sh\n" % (i, i, i) for i in range(10))
    yours = old.replace(b"u7:x:7:7::/:", b"u7:x:7:7::/y:") + b"me:x:3:3::/:/bin/sh\nmine:x:42:42::/:/bin/sh\n"
    new = b"_v:x:42:42::/:/bin/sh\n" + old.replace(b"u7:x:7:7::/:", b"u7:x:7:7::/n:")
    result = rule_merge("passwd", old, yours, new)
    clash, field = result.hunks  # me/u3 share uid 3 in your file already: not a merge conflict
    assert clash.note == "uid 42 used by mine (your change) and by _v (vendor update)"
    assert (clash.yours_start, clash.new_start) == (11, 0)
    assert (field.old_start, field.yours_start, field.new_start) == (7, 7, 8)
