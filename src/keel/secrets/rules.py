"""Which values are encrypted: sops' selection rules (at most one per file)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"
RULE_KEYS = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)
COMMENT_RULES = frozenset({"unencrypted_comment_regex", "encrypted_comment_regex"})


@lru_cache(maxsize=64)
def go_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Go RE2 pattern for Python (``\\z`` is spelled ``\\Z`` here)."""
    return re.compile(pattern.replace(r"\z", r"\Z"))


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str = "unencrypted_suffix"
    value: str = DEFAULT_UNENCRYPTED_SUFFIX

    def __post_init__(self) -> None:
        if self.kind not in RULE_KEYS:
            raise ValueError(f"unknown selection rule {self.kind!r}")
        if self.kind.endswith("regex"):
            try:
                go_regex(self.value)
            except re.error as exc:
                raise ValueError(
                    f"{self.kind} {self.value!r} is not a valid regex: {exc}"
                ) from None

    @property
    def by_comment(self) -> bool:
        return self.kind in COMMENT_RULES

    @property
    def _regex(self) -> re.Pattern[str]:
        return go_regex(self.value)

    def should_encrypt(self, path: list[str]) -> bool:
        """The decision for a leaf at ``path`` (map keys from the root); whole subtrees follow."""
        if self.kind == "unencrypted_suffix":
            return not any(part.endswith(self.value) for part in path)
        if self.kind == "encrypted_suffix":
            return any(part.endswith(self.value) for part in path)
        if self.kind == "unencrypted_regex":
            return not any(self._regex.search(part) for part in path)
        if self.kind == "encrypted_regex":
            return any(self._regex.search(part) for part in path)
        # Comment rules need the comments stack; callers sniff ENC[...] values instead.
        raise NotImplementedError(self.kind)


def rule_from_options(options: dict[str, object]) -> Rule:
    """The one rule named in ``options`` (metadata, a ``.sops.yaml`` rule or CLI flags)."""
    present = [key for key in RULE_KEYS if options.get(key) not in (None, "")]
    if len(present) > 1:
        raise ValueError(f"only one selection rule is allowed, got {', '.join(present)}")
    if not present:
        return Rule()
    return Rule(present[0], str(options[present[0]]))
