"""Per-path merge rules, loaded from YAML rule files (data, not code).

Sources, in load order: the shipped ``rules/`` directory, the host directory
(``/etc/overmerge/rules.d`` by default), then each ``--rules DIR`` in order.
Within a directory, ``*.yaml``/``*.yml`` files load in name order. A rule
defined again under the same name replaces the earlier definition.
Rules are never read from a layer being merged: callers pass host paths only.

Which rule applies when several match a path: the most specific glob wins
(a glob without wildcards beats any glob with one; then more literal
characters); on a tie the rule loaded last wins, so a host or ``--rules``
file can override a shipped rule either by reusing its name or by matching
the same path as specifically.

This module does the YAML reading (I/O at the edge of the core); the strategies
it names stay pure.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from overmerge.errors import RuleError
from overmerge.merge import (
    DEFAULT_MAX_SIZE,
    STRATEGIES,
    WHOLE_FILE_STRATEGIES,
    MergeResult,
    is_binary,
    merge_bytes,
)

# libyaml when the wheel has it: the pure-Python loader costs ~0.3 s per run.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

HOST_RULES_DIR = Path("/etc/overmerge/rules.d")
_RULE_KEYS = {"name", "paths", "strategy", "options", "description"}


@dataclass(frozen=True)
class Rule:
    name: str
    globs: tuple[str, ...]
    strategy: str
    options: Mapping[str, Any]
    source: str  # "file:line"
    description: str = ""

    def matching_glob(self, path: str) -> str | None:
        """The most specific of this rule's globs that matches ``path``, if any."""
        best = None
        for glob in self.globs:
            if glob_regex(glob).fullmatch(path) and (best is None or specificity(glob) > specificity(best)):
                best = glob
        return best


@dataclass
class RuleSet:
    """The rules in effect, in load order (a redefined name keeps its latest place)."""

    rules: list[Rule] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # files read, in order

    def add(self, rule: Rule) -> None:
        self.rules = [r for r in self.rules if r.name != rule.name] + [rule]

    def candidates(self, path: str) -> list[tuple[Rule, str, int]]:
        """(rule, matching glob, load position) for every rule matching ``path``."""
        path = path.lstrip("/")
        found = []
        for pos, rule in enumerate(self.rules):
            glob = rule.matching_glob(path)
            if glob is not None:
                found.append((rule, glob, pos))
        return found

    def match(self, path: str) -> Rule | None:
        """The rule for ``path`` (relative to the layer root, e.g. "etc/passwd"), or None."""
        found = self.candidates(path)
        if not found:
            return None
        return max(found, key=lambda c: (specificity(c[1]), c[2]))[0]

    def explain(self, path: str) -> tuple[Rule | None, list[str]]:
        """The rule for ``path`` and human-readable reasons why."""
        found = self.candidates(path)
        if not found:
            return None, [f"no rule matches {path}: it is merged as text "
                          f"(binary files and files over the size limit are not line-merged)"]
        winner = self.match(path)
        reasons = []
        for rule, glob, _pos in found:
            mark = "applies" if rule is winner else "also matches"
            reasons.append(f"{rule.name} ({rule.source}) {mark}: glob {glob!r}, strategy {rule.strategy}")
        if len(found) > 1:
            reasons.append("the most specific glob wins; on a tie, the rule loaded last")
        return winner, reasons


_SPECIAL = re.compile(r"[*?\[]")


def specificity(glob: str) -> tuple[int, int]:
    """(1 if no wildcard, number of literal characters) — bigger is more specific."""
    literal = len(re.sub(r"\*\*|\*|\?|\[[^\]]*\]", "", glob))
    return (0 if _SPECIAL.search(glob) else 1, literal)


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def glob_regex(glob: str) -> re.Pattern[str]:
    """Path glob -> regex: ``*`` and ``?`` stay within a path component, ``**`` crosses them."""
    cached = _REGEX_CACHE.get(glob)
    if cached is not None:
        return cached
    out, i = [], 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    pattern = re.compile("".join(out))
    _REGEX_CACHE[glob] = pattern
    return pattern


def shipped_rules_dir() -> Path:
    """The rules shipped with overmerge: the repo's ``rules/``, else the installed copy."""
    here = Path(__file__).resolve().parent.parent / "rules"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "overmerge" / "rules"


def load_rules(extra_dirs: Sequence[Path] = (), *, host_dir: Path | None = HOST_RULES_DIR) -> RuleSet:
    """Shipped rules, then the host directory if it exists, then ``extra_dirs`` in order.

    A directory given in ``extra_dirs`` must exist (it was asked for); a missing
    host directory is simply skipped.
    """
    ruleset = RuleSet()
    dirs: list[Path] = [shipped_rules_dir()]
    if host_dir is not None and host_dir.is_dir():
        dirs.append(host_dir)
    for d in extra_dirs:
        d = Path(d)
        if not d.is_dir():
            raise RuleError(f"{d}: rules directory not found; check the --rules path")
        dirs.append(d)
    for d in dirs:
        for path in sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
            for rule in parse_rule_file(path.read_bytes(), str(path)):
                ruleset.add(rule)
            ruleset.sources.append(str(path))
    return ruleset


def parse_rule_file(data: bytes, filename: str) -> list[Rule]:
    """Parse one rule file. Errors name the file, the line and what is wrong."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(f"{filename}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        root = yaml.compose(text, Loader=_LOADER)
        value = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark is not None else filename
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleError(f"{where}: invalid YAML: {problem}") from None
    if root is None:
        return []

    def err(node: yaml.Node, message: str) -> RuleError:
        return RuleError(f"{filename}:{node.start_mark.line + 1}: {message}")

    if not isinstance(root, yaml.MappingNode) or not isinstance(value, dict):
        raise err(root, "expected a mapping with a 'rules' list")
    unknown = set(value) - {"rules"}
    if unknown:
        raise err(root, f"unknown top-level key {sorted(map(str, unknown))[0]!r} (expected 'rules')")
    rules_node = next((v for k, v in root.value if k.value == "rules"), None)
    if rules_node is None or value.get("rules") is None:
        return []
    if not isinstance(rules_node, yaml.SequenceNode):
        raise err(rules_node, "'rules' must be a list")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for node, raw in zip(rules_node.value, value["rules"]):
        line = node.start_mark.line + 1
        if not isinstance(raw, dict):
            raise err(node, "each rule must be a mapping with name, paths and strategy")
        extra = set(raw) - _RULE_KEYS
        if extra:
            raise err(_key_node(node, sorted(extra)[0]) or node,
                      f"unknown rule key {sorted(extra)[0]!r} (allowed: {', '.join(sorted(_RULE_KEYS))})")
        for required in ("name", "paths", "strategy"):
            if required not in raw:
                raise err(node, f"rule is missing {required!r}")
        name, paths, strategy = raw["name"], raw["paths"], raw["strategy"]
        if not isinstance(name, str) or not name:
            raise err(_key_node(node, "name") or node, "'name' must be a non-empty string")
        if name in seen:
            raise err(node, f"rule {name!r} is defined twice in this file (first at line {seen[name]})")
        seen[name] = line
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
            raise err(_key_node(node, "paths") or node, f"rule {name!r}: 'paths' must be a glob or a list of globs")
        for p in paths:
            if p.startswith("/") or ".." in p.split("/"):
                raise err(_key_node(node, "paths") or node,
                          f"rule {name!r}: path glob {p!r} must be relative to the layer root, without '..'")
        if strategy not in STRATEGIES:
            raise err(_key_node(node, "strategy") or node,
                      f"rule {name!r}: unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
        options = raw.get("options") or {}
        if not isinstance(options, dict):
            raise err(_key_node(node, "options") or node, f"rule {name!r}: 'options' must be a mapping")
        problem = check_options(strategy, options)
        if problem:
            raise err(_key_node(node, "options") or node, f"rule {name!r}: {problem}")
        rules.append(Rule(name=name, globs=tuple(paths), strategy=strategy,
                          options=MappingProxyType(dict(options)), source=f"{filename}:{line}",
                          description=str(raw.get("description") or "")))
    return rules


def _key_node(mapping: yaml.Node, key: str) -> yaml.Node | None:
    """The value node for ``key`` (so errors point at the offending line)."""
    if isinstance(mapping, yaml.MappingNode):
        for k, v in mapping.value:
            if k.value == key:
                return v
    return None


_COMMON_OPTIONS = {"max_size"}
_OPTIONS: dict[str, set[str]] = {
    "text": set(),
    "records": {"separator", "maxsplit", "key", "sets", "unique", "prefer_yours", "fields", "comment", "what"},
    "set": set(),
    "keyvalue": {"syntax", "comment", "case_insensitive", "block_start"},
    "ini": {"comment", "case_insensitive"},
    "deb822": {"key"},
    "keep-user": set(),
    "take-new": set(),
    "regenerate": set(),
    "ask": set(),
}


def check_options(strategy: str, options: Mapping[str, Any]) -> str | None:
    """What is wrong with a strategy's options, or None."""
    allowed = _OPTIONS[strategy] | _COMMON_OPTIONS
    for key in options:
        if key not in allowed:
            return (f"unknown option {key!r} for strategy {strategy}"
                    f" (allowed: {', '.join(sorted(allowed))})")
    if "max_size" in options and not (isinstance(options["max_size"], int) and options["max_size"] > 0):
        return "'max_size' must be a positive number of bytes"
    for key in ("key", "unique", "prefer_yours"):
        value = options.get(key)
        if value is not None and strategy == "records" and not (
                isinstance(value, list) and all(isinstance(i, int) and i >= 0 for i in value)):
            return f"option {key!r} must be a list of field indexes (0-based)"
    if strategy == "keyvalue":
        if options.get("syntax", "auto") not in ("auto", "equals", "space", "colon"):
            return "option 'syntax' must be auto, equals, space or colon"
        if "block_start" in options:
            try:
                re.compile(str(options["block_start"]))
            except re.error as exc:
                return f"option 'block_start' is not a valid regex: {exc}"
    return None


def merge_with_rule(rule: Rule | None, old: bytes, yours: bytes, new: bytes, *,
                    max_size: int = DEFAULT_MAX_SIZE) -> MergeResult:
    """Merge one file by its rule; with no rule, as text (never binary or oversized files)."""
    if rule is None:
        return merge_bytes("text", old, yours, new, {"max_size": max_size})
    options = dict(rule.options)
    options.setdefault("max_size", max_size)
    return merge_bytes(rule.strategy, old, yours, new, options)


__all__ = [
    "Rule",
    "RuleSet",
    "HOST_RULES_DIR",
    "load_rules",
    "parse_rule_file",
    "shipped_rules_dir",
    "merge_with_rule",
    "glob_regex",
    "specificity",
    "is_binary",
    "WHOLE_FILE_STRATEGIES",
]
