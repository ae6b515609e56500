"""Walk a document: encrypt or decrypt every selected leaf and compute the MAC on the way.

Order, AAD and MAC rules follow sops exactly (FORMAT.md §2-§5): depth-first in file order;
AAD = map keys joined by ``:`` plus ``:`` (list indices are not part of it); the MAC is an
upper-case hex SHA-512 over the plaintext bytes of every non-comment leaf, no separators.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from keel.secrets.cipher import ValueCipher, is_enc, parse_enc
from keel.secrets.errors import ValueDecryptError
from keel.secrets.model import Branch, Comment, to_bytes
from keel.secrets.rules import Rule, go_regex

# SHA-256("sops"): the MAC starts with it when only encrypted values are authenticated.
_MAC_ONLY_ENCRYPTED_INIT = hashlib.sha256(b"sops").digest()


def _aad(path: list[str]) -> str:
    return ":".join(path) + ":"


def _where(path: list[str]) -> str:
    return "key " + (".".join(path) if path else "(top level)")


class _Walker:
    def __init__(self, cipher: ValueCipher, rule: Rule, mac_only_encrypted: bool) -> None:
        self.cipher = cipher
        self.rule = rule
        self.mac_only = mac_only_encrypted
        self.hash = hashlib.sha512()
        if mac_only_encrypted:
            self.hash.update(_MAC_ONLY_ENCRYPTED_INIT)

    def selected(self, path: list[str], value: Any) -> bool:
        if self.rule.by_comment:
            # Comment-regex files: the stored form tells which values were encrypted.
            return is_enc(value)
        return self.rule.should_encrypt(path)

    def hexdigest(self) -> str:
        return self.hash.hexdigest().upper()

    def walk(self, value: Any, path: list[str], leaf: Callable[[Any, list[str]], Any]) -> Any:
        if isinstance(value, Branch):
            out = Branch()
            for key, item in value:
                if isinstance(key, Comment):
                    out.append((self.comment(key, path), None))
                else:
                    out.append((key, self.walk(item, [*path, key], leaf)))
            return out
        if isinstance(value, list):
            return [
                self.comment(item, path)
                if isinstance(item, Comment)
                else self.list_item(item, path, leaf)
                for item in value
            ]
        if value is None:
            return None
        return leaf(value, path)

    def list_item(self, item: Any, path: list[str], leaf: Callable[[Any, list[str]], Any]) -> Any:
        return self.walk(item, path, leaf)

    def comment(self, text: Comment, path: list[str]) -> Comment:
        raise NotImplementedError


class _Decryptor(_Walker):
    def list_item(self, item: Any, path: list[str], leaf: Callable[[Any, list[str]], Any]) -> Any:
        # sops writes a comment inside a list as a list element "ENC[...,type:comment]".
        if is_enc(item):
            try:
                kind = parse_enc(item).type
            except ValueError:
                kind = ""
            if kind == "comment":
                return self.comment(Comment(item), path)
        return self.walk(item, path, leaf)

    def comment(self, text: Comment, path: list[str]) -> Comment:
        if not is_enc(text):
            return text
        try:
            value = self.cipher.decrypt(str(text), _aad(path), where=_where(path))
        except ValueDecryptError:
            return text  # sops keeps a comment it cannot decrypt as it is
        return Comment(value)

    def leaf(self, value: Any, path: list[str]) -> Any:
        encrypted = self.selected(path, value)
        if encrypted:
            if not isinstance(value, str):
                raise ValueDecryptError(
                    f"{_where(path)}: expected an ENC[...] value, found a plain "
                    f"{type(value).__name__} (the file was edited without sops?)"
                )
            value = self.cipher.decrypt(value, _aad(path), where=_where(path))
        if encrypted or not self.mac_only:
            self.hash.update(to_bytes(value))
        return value


class _Encryptor(_Walker):
    """Encrypts selected leaves. Comment rules use sops' comments stack: per map/list level,
    the comments seen since the last non-comment sibling, for every level down to the leaf."""

    def encrypt_tree(self, value: Any, path: list[str], stack: list[list[str]]) -> Any:
        if isinstance(value, Branch):
            out = Branch()
            stack = [*stack, []]
            for key, item in value:
                if isinstance(key, Comment):
                    stack[-1].append(str(key))
                    out.append((self.comment_at(key, path, stack), None))
                else:
                    out.append((key, self.encrypt_tree(item, [*path, key], stack)))
                    stack[-1] = []
            return out
        if isinstance(value, list):
            items: list[Any] = []
            stack = [*stack, []]
            for item in value:
                if isinstance(item, Comment):
                    stack[-1].append(str(item))
                    items.append(self.comment_at(item, path, stack))
                else:
                    items.append(self.encrypt_tree(item, path, stack))
                    stack[-1] = []
            return items
        if value is None:
            return None
        encrypted = self.decide(path, stack, is_comment=False)
        if encrypted or not self.mac_only:
            self.hash.update(to_bytes(value))
        if encrypted:
            return self.cipher.encrypt(value, _aad(path))
        return value

    def decide(self, path: list[str], stack: list[list[str]], *, is_comment: bool) -> bool:
        if not self.rule.by_comment:
            return self.rule.should_encrypt(path)
        pattern = go_regex(self.rule.value)
        comments = [c for level in stack for c in level]
        if self.rule.kind == "unencrypted_comment_regex":
            return not any(pattern.search(c) for c in comments)
        if is_comment:  # the comment being decided does not select itself
            comments = comments[:-1]
        return any(pattern.search(c) for c in comments)

    def comment_at(self, text: Comment, path: list[str], stack: list[list[str]]) -> Comment:
        if not text or not self.decide(path, stack, is_comment=True):
            return text
        return Comment(self.cipher.encrypt(text, _aad(path), kind="comment"))


def decrypt_branches(
    branches: list[Branch], cipher: ValueCipher, rule: Rule, *, mac_only_encrypted: bool
) -> tuple[list[Branch], str]:
    """(plaintext branches, the MAC recomputed over them)."""
    walker = _Decryptor(cipher, rule, mac_only_encrypted)
    plain = [walker.walk(branch, [], walker.leaf) for branch in branches]
    return plain, walker.hexdigest()


def encrypt_branches(
    branches: list[Branch], cipher: ValueCipher, rule: Rule, *, mac_only_encrypted: bool
) -> tuple[list[Branch], str]:
    """(encrypted branches, the MAC of the plaintext)."""
    walker = _Encryptor(cipher, rule, mac_only_encrypted)
    encrypted = [walker.encrypt_tree(branch, [], []) for branch in branches]
    return encrypted, walker.hexdigest()
