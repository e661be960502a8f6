"""The strict schema of reputable.toml: every defect of issue 15 has a regression test here."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reputable.config import DEFAULT_TOML, ConfigProblems, parse_config
from reputable.config_check import metrics_address, stage_problems
from reputable.config_report import (
    REDACTED,
    display_path,
    effective_table,
    reference_markdown,
    to_toml,
)
from reputable.config_schema import Schema
from reputable.core.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parents[1]


def problems(text: str) -> list[str]:
    """Return the plain lines of every problem the schema finds in *text* (none: [])."""
    try:
        parse_config(text)
    except ConfigProblems as exc:
        return [p.text() for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[dns]\nworkrs = 2\n", '[dns] workrs = 2: unknown key; did you mean "workers"?'),
        (
            "[feeds]\nintervall = 3\n",
            '[feeds] intervall = 3: unknown key; did you mean "interval"?',
        ),
        (
            "[detectors.mail.harvest]\nshar = 0.4\n",
            '[detectors.mail.harvest] shar = 0.4: unknown key; did you mean "share"?',
        ),
        (
            '[dns]\nlisten = "127.0.0.1:5300"\n',
            '[dns] listen = "127.0.0.1:5300": must be a list in brackets',
        ),
        (
            '[policy]\nescalate_v4 = "eight"\n',
            '[policy] escalate_v4 = "eight": must be a whole number (no quotes), e.g. escalate_v4 = 8',
        ),
        ("[zones.ip]\nttl = -5\n", "[zones.ip] ttl = -5: must be from 0 to 2147483647 seconds"),
        ("[zones.ip]\nttl = 2147483648\n", "[zones.ip] ttl = 2147483648: must be from 0 to"),
        (
            '[dns]\nlisten = ["127.0.0.1:70000"]\n',
            '[dns] listen[0] = "127.0.0.1:70000": port 70000 is out of range: use 0-65535',
        ),
        (
            '[dns]\nfast_path = "yes"\n',
            '[dns] fast_path = "yes": must be true or false (no quotes), e.g. fast_path = true',
        ),
        ('[dns]\nreload_interval = "soon"\n', '[dns] reload_interval = "soon": bad duration'),
        (
            '[[sources.netlog]]\npath = "a.log"\nfromat = "sshd"\n',
            '[[sources.netlog]] #1 fromat = "sshd": unknown key; did you mean "format"?',
        ),
        ("user = 5\n", "user = 5: must be text in double quotes"),
        ("[feed]\ninterval = 3\n", '[feed]: unknown table; did you mean "feeds"?'),
        (
            "[http]\nmax_body = true\n",
            '[http] max_body = true: give bytes, e.g. 10485760 or "10MB"',
        ),
    ],
)
def test_each_defect_is_one_plain_line_naming_key_value_and_fix(text: str, expected: str) -> None:
    """Each defect of the issue is reported with the key path, the value and the fix."""
    lines = problems(text)
    assert any(line.startswith(expected) for line in lines), lines


@pytest.mark.parametrize(
    "text",
    ["[http]\ndelist_per_client = 0\n", "[http]\ndelist_per_subject = 0\n",
     "[web]\nlogin_per_minute = 0\n"],
)  # fmt: skip
def test_rate_limits_of_zero_are_out_of_the_schema_range(text: str) -> None:
    """The schema (and so docs/configuration.md's reference) refuses what [http]/[web] refuse."""
    assert any("must be >= 1" in line for line in problems(text)), problems(text)


def test_the_reference_shows_the_bounds_of_optional_keys() -> None:
    """An unset-by-default key's range is in the reference too (it read just "integer")."""
    reference = reference_markdown()
    assert "| `checker.concurrency` | integer >= 1 | unset |" in reference
    assert "| `dns.access[].rrl` | integer >= 0 | unset |" in reference
    assert "| `checker.timeout` | number > 0 | unset |" in reference
    assert any("must be > 0" in line for line in problems("[checker]\ntimeout = 0\n"))


def test_several_problems_are_reported_at_once() -> None:
    """All broken keys of a file come out in one error, not one per run."""
    text = '[dns]\nworkrs = 2\nfast_path = "yes"\n[zones.ip]\nttl = -5\n[feeds]\nintervall = 3\n'
    with pytest.raises(ConfigProblems) as caught:
        parse_config(text, Path("/etc/reputable/reputable.toml"))
    assert [p.path for p in caught.value.problems] == [
        "dns.fast_path",
        "dns.workrs",
        "zones.ip.ttl",
        "feeds.intervall",
    ]
    assert str(caught.value).startswith("/etc/reputable/reputable.toml: 4 problems:\n  [dns] ")


def test_the_default_file_and_the_empty_file_are_valid() -> None:
    """`reputable init`'s file and an empty file pass the schema."""
    assert problems(DEFAULT_TOML) == []
    assert problems("") == []


def test_max_quiet_never_and_retention_forever_are_accepted() -> None:
    """The two words the duration keys take besides durations pass; other words do not."""
    assert (
        problems('[policy.causes.manual]\nmax_quiet = "never"\n[retention]\nevidence = "forever"\n')
        == []
    )
    assert problems('[retention]\nevidence = "always"\n') != []


def test_display_path_reads_like_the_file() -> None:
    """Key paths print as the table header and key a user sees in the file."""
    assert display_path("dns.workrs") == "[dns] workrs"
    assert display_path("policy.causes.spam.list") == "[policy.causes.spam] list"
    assert display_path("zones.ip.codes.spam") == "[zones.ip] codes.spam"
    assert display_path("sinks[1].kind") == "[[sinks]] #2 kind"
    assert display_path("dns.access[0].action") == "[[dns.access]] #1 action"
    assert display_path("user") == "user"


def test_stage_problems_name_missing_files_and_duplicate_zones(tmp_path: Path) -> None:
    """`config check` also checks what only the stages or the file system can tell."""
    text = (
        '[policy]\npfx2as = "missing.pfx2as"\n'
        '[zones.domain]\nname = "bl.reputable.test"\n'
        '[[sinks]]\nkind = "nftables"\npath = "out.nft"\nhooks = ["sideways"]\n'
        '[policy_service]\nactions = { spam = "EXPLODE" }\n'
    )
    path = tmp_path / "reputable.toml"
    path.write_text(text, encoding="utf-8")
    config = parse_config(text, path)
    found = {p.path: p.message for p in stage_problems(config)}
    assert "does not exist" in found["policy.pfx2as"]
    assert "the same name as [zones.ip]" in found["zones.domain.name"]
    assert "sinks" in found and "policy_service" in found
    assert "EXPLODE" in found["policy_service"]


def test_missing_log_files_stop_config_check_but_not_serve(tmp_path: Path) -> None:
    """A log not written yet is reported by `config check`; serve's preflight follows it later."""
    text = '[[sources.netlog]]\npath = "later.log"\nformat = "sshd"\n'
    path = tmp_path / "reputable.toml"
    path.write_text(text, encoding="utf-8")
    config = parse_config(text, path)
    assert [p.path for p in stage_problems(config)] == ["sources.netlog[0].path"]
    assert stage_problems(config, logs=False) == []


def test_the_defaults_have_no_stage_problems(tmp_path: Path) -> None:
    """The default configuration passes every stage's own checks."""
    path = tmp_path / "reputable.toml"
    path.write_text(DEFAULT_TOML, encoding="utf-8")
    assert stage_problems(parse_config(DEFAULT_TOML, path)) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1:99999", "port 99999 is out of range"),
        ("garbage", "use --metrics HOST:PORT"),
        ("127.0.0.1", "use --metrics HOST:PORT"),
        ("metrics.example:9153", "numeric address"),
    ],
)
def test_bad_metrics_addresses_are_input_errors(text: str, message: str) -> None:
    """serve --metrics takes HOST:PORT with a numeric host and a port in range."""
    with pytest.raises(InputError, match=message):
        metrics_address(text)
    assert metrics_address("") is None
    assert metrics_address("[::1]:9153") == ("::1", 9153)


def test_show_round_trips_and_redacts_secrets(tmp_path: Path) -> None:
    """`config show` prints TOML that parses to the same settings, with secrets hidden."""
    text = DEFAULT_TOML + (
        '\n[transfer]\nkeys = { mirror = "c2VjcmV0c2VjcmV0c2VjcmV0" }\n'
        '[mail]\nrelay = "127.0.0.1:25"\npassword = "hunter2"\n'
        "[detectors.mail.harvest]\nshare = 0.6\n"
    )
    raw = tomllib.loads(text)
    table = effective_table(Schema.model_validate(raw))
    shown = to_toml(table)
    assert "hunter2" not in shown and "c2VjcmV0" not in shown
    assert table["mail"]["password"] == REDACTED
    assert table["transfer"]["keys"]["mirror"] == REDACTED
    again = parse_config(shown, tmp_path / "shown.toml")
    original = parse_config(text, tmp_path / "r.toml")
    assert again.dns == original.dns and again.ip_zone == original.ip_zone
    assert again.policy == original.policy and again.reputation == original.reputation
    assert table["detectors"]["mail"]["harvest"]["share"] == 0.6
    assert table["detectors"]["mail"]["harvest"]["window"] == "3600s"  # a default, filled in


def test_show_of_the_defaults_is_a_fixed_point(tmp_path: Path) -> None:
    """Showing the shown file changes nothing (every default is written out once)."""
    first = to_toml(effective_table(Schema.model_validate(tomllib.loads(DEFAULT_TOML))))
    second = to_toml(effective_table(Schema.model_validate(tomllib.loads(first))))
    assert first == second
    assert parse_config(first, tmp_path / "r.toml").policy.interval == timedelta(seconds=5)


def test_configuration_reference_matches_the_schema() -> None:
    """docs/configuration.md carries the reference generated from the schema, unedited."""
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    start, end = "<!-- schema reference: begin -->\n", "<!-- schema reference: end -->"
    assert start in doc and end in doc, "regenerate: python -m reputable.config_report"
    block = doc.split(start, 1)[1].split(end, 1)[0]
    assert block == reference_markdown(), "regenerate: python -m reputable.config_report"


_SECTIONS = {
    name: sorted(info.annotation.model_fields)  # type: ignore[union-attr]  # models only
    for name, info in Schema.model_fields.items()
    if isinstance(info.annotation, type) and hasattr(info.annotation, "model_fields")
}
_VALUES = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=12),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.one_of(st.text(max_size=8), st.integers()), max_size=3),
)
_FILES = st.dictionaries(
    st.sampled_from(sorted(_SECTIONS)),
    st.dictionaries(
        st.one_of(
            st.sampled_from(sorted({k for ks in _SECTIONS.values() for k in ks})),
            st.text(max_size=6),
        ),
        _VALUES,
        max_size=4,
    ),
    max_size=4,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_FILES)
def test_any_file_is_either_valid_or_a_config_error(table: dict[str, dict[str, object]]) -> None:
    """Whatever values land on whatever keys, parsing gives a Config or a ConfigError."""
    try:
        parse_config(to_toml(table))
    except ConfigError as exc:
        assert str(exc)
