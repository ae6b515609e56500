"""Interop with the real sops binary, both directions, every store, value type and rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from keel.secrets import KeyPlan, Rule, decrypt_bytes, encrypt_bytes, reencrypt
from keel.secrets.model import to_plain
from keel.secrets.stores import Format, emit_plain

YAML_PLAIN = b"""# a top-level comment
string: hello world
int: 42
negative: -7
hex_unencrypted: 0x10
float: 3.14
large: 1e21
bool_true: true
bool_false: False
time: 2024-02-29T10:11:12.5+07:00
date: 2024-02-29
nothing: null
empty: ""
multiline: |
    line one
    line two
nested:
    # inside nested
    deeper:
        value: deep
    list:
        - x
        - 1
        - k: v
        - [a, b]
yes: yes
quoted_true: "true"
unicode: "h\xc3\xa9llo \xf0\x9f\x98\x80"
key with spaces: v
secret_ed: only-with-suffix
"""
JSON_PLAIN = (
    b'{"string": "x", "int": 7, "float": 1.5, "bool": true, "nothing": null, '
    b'"list": [1, "two", {"c": "d"}], "nested": {"html": "<&>", "empty": ""}, '
    b'"large": 1e21, "secret_ed": "s"}'
)
DOTENV_PLAIN = (
    b"# a comment\nA=1\nSTRING=hello world\nSPACED =x\nexport X=1\nMULTI=a\\nb\nsecret_ed=s\n"
)
PLAINTEXTS: dict[Format, tuple[bytes, str]] = {
    "yaml": (YAML_PLAIN, "yaml"),
    "json": (JSON_PLAIN, "json"),
    "dotenv": (DOTENV_PLAIN, "env"),
}
RULES = [
    (Rule(), False),
    (Rule(), True),
    (Rule("unencrypted_suffix", "_u"), False),
    (Rule("encrypted_suffix", "_ed"), False),
    (Rule("encrypted_regex", "^(string|nested|STRING)$"), True),
    (Rule("unencrypted_regex", "^(string|A)$"), False),
]


def _sops_json(sops: Any, path: Path, key: Any) -> Any:
    return sops("decrypt", "--output-type", "json", str(path), key=key).stdout


@pytest.mark.parametrize("fmt", list(PLAINTEXTS))
def test_keel_encrypts_sops_decrypts_every_rule(
    fmt: Format, sops: Any, age_key: Any, tmp_path: Path
) -> None:
    plain, ext = PLAINTEXTS[fmt]
    for index, (rule, mac_only) in enumerate(RULES):
        encrypted = encrypt_bytes(
            plain, fmt, plan=KeyPlan.single([age_key.recipient]), rule=rule,
            mac_only_encrypted=mac_only,
        )  # fmt: skip
        path = tmp_path / f"file{index}.{ext}"
        path.write_bytes(encrypted)
        # sops verifies the MAC; its JSON is exactly what Keel prints
        ours = decrypt_bytes(encrypted, fmt, identities=age_key.identities())
        assert _sops_json(sops, path, age_key) == emit_plain(ours.branches, "json"), (
            rule,
            mac_only,
        )


@pytest.mark.parametrize("fmt", list(PLAINTEXTS))
def test_sops_encrypts_keel_decrypts_to_the_same_json(
    fmt: Format, sops: Any, age_key: Any, tmp_path: Path
) -> None:
    plain, ext = PLAINTEXTS[fmt]
    source = tmp_path / f"plain.{ext}"
    source.write_bytes(plain)
    flags: list[list[str]] = [
        [],
        ["--unencrypted-suffix", "_u"],
        ["--encrypted-suffix", "_ed"],
        ["--encrypted-regex", "^(string|nested|STRING)$"],
        ["--unencrypted-regex", "^(string|A)$"],
    ]
    for index, extra in enumerate(flags):
        result = sops("--config", "/dev/null", "encrypt", "--age", age_key.recipient, *extra,
                      str(source))  # fmt: skip
        encrypted = tmp_path / f"enc{index}.{ext}"
        encrypted.write_bytes(result.stdout)
        ours = decrypt_bytes(result.stdout, fmt, identities=age_key.identities())
        assert emit_plain(ours.branches, "json") == _sops_json(sops, encrypted, age_key), extra
    # the plaintext in its own format is what `sops decrypt` prints
    assert emit_plain(ours.branches, fmt) == sops("decrypt", str(encrypted), key=age_key).stdout


def test_mac_only_encrypted_from_sops(sops: Any, age_key: Any, tmp_path: Path) -> None:
    config = tmp_path / ".sops.yaml"
    config.write_text(
        "creation_rules:\n  - age: " + age_key.recipient + "\n"
        "    encrypted_regex: ^string$\n    mac_only_encrypted: true\n"
    )
    source = tmp_path / "plain.yaml"
    source.write_bytes(YAML_PLAIN)
    result = sops("--config", str(config), "encrypt", str(source))
    ours = decrypt_bytes(result.stdout, "yaml", identities=age_key.identities())
    assert ours.metadata.mac_only_encrypted
    assert ours.tree()["string"] == "hello world"


def test_types_survive_the_round_trip(age_key: Any) -> None:
    encrypted = encrypt_bytes(YAML_PLAIN, "yaml", plan=KeyPlan.single([age_key.recipient]))
    text = encrypted.decode()
    for kind in ("str", "int", "float", "bool", "time", "comment"):
        assert f"type:{kind}]" in text
    assert "hex_unencrypted: 16" in text
    tree = decrypt_bytes(encrypted, "yaml", identities=age_key.identities()).tree()
    assert tree["int"] == 42
    assert tree["float"] == 3.14
    assert tree["bool_false"] is False
    assert tree["time"] == "2024-02-29T10:11:12.5+07:00"
    assert tree["date"] == "2024-02-29T00:00:00Z"
    assert tree["yes"] == "yes"
    assert tree["quoted_true"] == "true"
    assert tree["nested"]["list"] == ["x", 1, {"k": "v"}, ["a", "b"]]


def test_multiple_recipients_each_open_the_file(
    sops: Any, age_key: Any, other_key: Any, tmp_path: Path
) -> None:
    encrypted = encrypt_bytes(
        JSON_PLAIN, "json", plan=KeyPlan.single([age_key.recipient, other_key.recipient])
    )
    path = tmp_path / "two.json"
    path.write_bytes(encrypted)
    for key in (age_key, other_key):
        assert json.loads(_sops_json(sops, path, key))["string"] == "x"
        assert decrypt_bytes(encrypted, "json", identities=key.identities()).tree()["int"] == 7


def test_shamir_key_groups_both_directions(
    sops: Any, age_key: Any, other_key: Any, tmp_path: Path
) -> None:
    config = tmp_path / ".sops.yaml"
    config.write_text(
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n"
        f"      - age: [{age_key.recipient}]\n      - age: [{other_key.recipient}]\n"
    )
    source = tmp_path / "plain.yaml"
    source.write_bytes(b"a: 1\nb: two\n")
    from_sops = sops("--config", str(config), "encrypt", str(source)).stdout
    assert b"key_groups" in from_sops
    both = age_key.identities()
    both.add_text(other_key.identity, "other")
    assert decrypt_bytes(from_sops, "yaml", identities=both).tree() == {"a": 1, "b": "two"}
    # one share of two is not enough
    with pytest.raises(Exception, match="1 of the 2 key groups"):
        decrypt_bytes(from_sops, "yaml", identities=age_key.identities())
    # Keel writes key groups sops can open
    plan = KeyPlan([[age_key.recipient], [other_key.recipient]], threshold=2)
    ours = encrypt_bytes(b"a: 1\nb: two\n", "yaml", plan=plan)
    path = tmp_path / "groups.yaml"
    path.write_bytes(ours)
    result = sops("decrypt", "--output-type", "json", str(path), keys=[age_key, other_key])
    assert json.loads(result.stdout) == {"a": 1, "b": "two"}


def test_rotate_and_updatekeys_round_trips(
    sops: Any, age_key: Any, other_key: Any, tmp_path: Path
) -> None:
    first = encrypt_bytes(YAML_PLAIN, "yaml", plan=KeyPlan.single([age_key.recipient]))
    doc = decrypt_bytes(first, "yaml", identities=age_key.identities())
    rotated = reencrypt(doc, rotate=True)
    again = decrypt_bytes(rotated, "yaml", identities=age_key.identities())
    assert again.data_key != doc.data_key
    assert [to_plain(b) for b in again.branches] == [to_plain(b) for b in doc.branches]
    # updatekeys: same data key, now wrapped for both keys
    updated = reencrypt(again, plan=KeyPlan.single([age_key.recipient, other_key.recipient]))
    path = tmp_path / "updated.yaml"
    path.write_bytes(updated)
    assert json.loads(_sops_json(sops, path, other_key))["string"] == "hello world"
    # and sops' own rotate output still opens with Keel
    rotated_by_sops = sops("rotate", str(path), key=age_key).stdout
    assert (
        decrypt_bytes(rotated_by_sops, "yaml", identities=other_key.identities()).tree()["int"]
        == 42
    )


def test_unchanged_values_keep_their_ciphertext(age_key: Any) -> None:
    first = encrypt_bytes(b"a: one\nb: two\n", "yaml", plan=KeyPlan.single([age_key.recipient]))
    doc = decrypt_bytes(first, "yaml", identities=age_key.identities())
    doc.branches[0].set("b", "changed")
    second = reencrypt(doc).decode()
    line_a = next(line for line in first.decode().splitlines() if line.startswith("a:"))
    assert line_a in second


YAML_EDGE_CASES = [
    b"empty_map: {}\nempty_list: []\nx: 1\n",
    b"a:\n    # only a comment\n    b: 1\nl:\n    # c1\n    - 1\n    # c2\n",
    b"'key:colon': v\n'#hash': '#v'\nq: 'it''s'\ndq: \"tab\\there\"\nlead: ' x'\ntrail: 'x '\n",
    b"keep: |+\n    a\n\n\nstrip: |-\n    a\n    b\nfolded: >\n    a\n    b\n",
    b"anchors:\n    base: &b\n        x: 1\n    use: *b\n",
    b"n: ~\nneg0: -0.0\noct: 0o17\nold_oct: 017\nbin: 0b101\nunder: 1_000\nf: 1.0\nexp: 1e-7\n",
    b"---\na: 1\n---\nb: 2\n",
    b"list:\n    - - a\n      - b\n    - {k: v, j: [1, 2]}\n    - - {x: y}\n",
    b"dash: '-'\nq: ?x\nstar: '*x'\nempty: ''\nspaces: 'a  b'\nnl: \"a\\nb\"\ncr: \"a\\rb\"\n",
    b"k: v # inline\n# head\nz:\n    - a # in a list\n",
]


def test_yaml_edge_cases_print_like_sops(sops: Any, age_key: Any, tmp_path: Path) -> None:
    for index, plain in enumerate(YAML_EDGE_CASES):
        encrypted = encrypt_bytes(plain, "yaml", plan=KeyPlan.single([age_key.recipient]))
        path = tmp_path / f"edge{index}.yaml"
        path.write_bytes(encrypted)
        ours = decrypt_bytes(encrypted, "yaml", identities=age_key.identities())
        assert emit_plain(ours.branches, "json") == _sops_json(sops, path, age_key), plain
        shown = sops("decrypt", str(path), key=age_key).stdout
        assert emit_plain(ours.branches, "yaml") == shown, plain


@pytest.mark.parametrize(
    ("fmt", "ext", "plain"),
    [
        ("ini", "ini", b"top = 1\n[db]\n; a comment\nuser = eve\npassword = s3cret\n[o]\nx = y\n"),
        ("binary", "bin", b"\x00\xffbinary\ndata\x80 not utf-8"),
    ],
)
def test_ini_and_binary_both_directions(
    fmt: Format, ext: str, plain: bytes, sops: Any, age_key: Any, tmp_path: Path
) -> None:
    source = tmp_path / f"plain.{ext}"
    source.write_bytes(plain)
    from_sops = sops("--config", "/dev/null", "encrypt", "--age", age_key.recipient, str(source))
    sops_file = tmp_path / f"sops.{ext}"
    sops_file.write_bytes(from_sops.stdout)
    expected = sops("decrypt", str(sops_file), key=age_key).stdout
    ours = decrypt_bytes(from_sops.stdout, fmt, identities=age_key.identities())
    assert emit_plain(ours.branches, fmt) == expected
    keel_file = tmp_path / f"keel.{ext}"
    keel_file.write_bytes(encrypt_bytes(plain, fmt, plan=KeyPlan.single([age_key.recipient])))
    assert sops("decrypt", str(keel_file), key=age_key).stdout == expected


COMMENT_RULE_PLAIN = b"""# plain head
a: 1
# sops:enc
b: secret
c: other
nested:
    # sops:enc
    x: 1
    y: 2
# sops:noenc
d: keep
l:
    # sops:enc
    - one
    - two
e: last
"""


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [("encrypted_comment_regex", "sops:enc"), ("unencrypted_comment_regex", "sops:noenc")],
)
def test_comment_regex_rules_select_like_sops(
    kind: str, pattern: str, sops: Any, age_key: Any, tmp_path: Path
) -> None:
    config = tmp_path / ".sops.yaml"
    config.write_text(f"creation_rules:\n  - age: {age_key.recipient}\n    {kind}: '{pattern}'\n")
    source = tmp_path / "plain.yaml"
    source.write_bytes(COMMENT_RULE_PLAIN)
    theirs = sops("--config", str(config), "encrypt", str(source)).stdout
    ours = encrypt_bytes(
        COMMENT_RULE_PLAIN,
        "yaml",
        plan=KeyPlan.single([age_key.recipient]),
        rule=Rule(kind, pattern),
    )

    def encrypted_keys(data: bytes) -> list[str]:
        body = data.decode().split("\nsops:")[0]
        return [line.split(":")[0].strip() for line in body.splitlines() if ": ENC[" in line]

    assert encrypted_keys(ours) == encrypted_keys(theirs)
    path = tmp_path / "ours.yaml"
    path.write_bytes(ours)
    mine = decrypt_bytes(theirs, "yaml", identities=age_key.identities())
    assert _sops_json(sops, path, age_key) == emit_plain(mine.branches, "json")
