"""``reputable check`` end to end through Typer, against the loopback fixture only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from reputable.cli.check import register
from tests.checker.conftest import GENERIC_IP, LISTED_IP
from tests.checker.dnsfixture import DnsFixture


def app() -> typer.Typer:
    """Return a Typer app with the checker commands registered, as the main CLI does."""
    main = typer.Typer()

    @main.callback()
    def root() -> None:
        """Test root."""

    register(main)
    return main


def run(world: DnsFixture, zone_file: Path, *args: str) -> tuple[int, str]:
    """Invoke ``check`` with the fixture as nameserver and only the test catalogue."""
    base = ["check", "--nameserver", world.nameserver, "--timeout", "0.2", "--no-builtin",
            "--zone-file", str(zone_file)]  # fmt: skip
    result = CliRunner(env={"COLUMNS": "300"}).invoke(app(), [*base, *args])
    return result.exit_code, result.output


def test_json_contract_of_a_listed_ip(world: DnsFixture, zone_file: Path) -> None:
    """--json prints the documented document, and a listed IP exits 1."""
    code, out = run(world, zone_file, LISTED_IP, "--domain", "example.net", "--json")
    doc = json.loads(out)
    assert code == 1
    assert doc["subject"] == LISTED_IP and doc["verdict"] == "listed"
    entry = next(e for e in doc["listings"] if e["zone"] == "listed.test")
    assert set(entry) >= {"zone", "status", "codes", "meaning", "txt", "removal_url"}
    assert entry["status"] == "listed" and entry["codes"] == ["127.0.0.2", "127.0.0.4"]
    statuses = {e["zone"]: e["status"] for e in doc["listings"]}
    assert statuses["slow.test"] == "timeout" and statuses["quota.test"] == "refused"
    for finding in doc["findings"]:
        assert set(finding) >= {"cause", "severity", "message", "remediation"}
    assert {f["cause"] for f in doc["findings"]} == {"rdns", "mail_auth"}


def test_clean_ip_exits_zero(world: DnsFixture, zone_file: Path) -> None:
    """An IP clean on every list that answered exits 0."""
    code, out = run(world, zone_file, GENERIC_IP, "--zone", "clean.test", "--zone", "listed.test",
                    "--json")  # fmt: skip
    assert code == 0, out
    assert json.loads(out)["verdict"] == "clean"


def test_no_answer_is_incomplete_not_clean(world: DnsFixture, zone_file: Path) -> None:
    """Clean where answered but a list timed out exits 3 (incomplete), never 0."""
    code, out = run(world, zone_file, GENERIC_IP, "--zone", "clean.test", "--zone", "slow.test",
                    "--json")  # fmt: skip
    assert code == 3
    assert json.loads(out)["verdict"] == "incomplete"


def test_only_refusals_is_an_error(world: DnsFixture, zone_file: Path) -> None:
    """When no list gives a usable answer the verdict is error (exit 2)."""
    code, out = run(world, zone_file, GENERIC_IP, "--zone", "quota.test", "--json")
    assert code == 2 and json.loads(out)["verdict"] == "error"


def test_bad_subject_is_a_message_not_a_traceback(world: DnsFixture, zone_file: Path) -> None:
    """A subject that is neither IP nor domain exits 2 with a message naming it."""
    code, out = run(world, zone_file, "300.1.2.3")
    assert code == 2
    assert "300.1.2.3" in out and "Traceback" not in out


def test_bad_nameserver_names_the_fix(world: DnsFixture, zone_file: Path) -> None:
    """A host name as nameserver is rejected with the numeric form to use."""
    result = CliRunner().invoke(app(), ["check", LISTED_IP, "--nameserver", "dns.example"])
    assert result.exit_code == 2
    assert "numeric address like 127.0.0.1:53" in result.output


def test_unknown_zone_is_rejected(world: DnsFixture, zone_file: Path) -> None:
    """--zone with a name not in the catalogue exits 2 and says how to add it."""
    code, out = run(world, zone_file, LISTED_IP, "--zone", "nope.test")
    assert code == 2 and "nope.test" in out


def test_terminal_report_shows_verdict_listing_and_fix(world: DnsFixture, zone_file: Path) -> None:
    """The Rich report starts with the verdict line and shows listings and rDNS findings."""
    code, out = run(world, zone_file, GENERIC_IP, "--helo", "mail.example.net")
    assert code == 1  # world.test lists everything
    assert out.startswith(f"{GENERIC_IP}: ")
    assert "problems found" in out
    assert "does not resolve back" in out


def test_domain_check_covers_rhsbl_mx_ips_and_mail_auth(world: DnsFixture, zone_file: Path) -> None:
    """A domain is checked on domain lists, its MX host's IP on IP lists, plus SPF/DMARC/DKIM."""
    code, out = run(world, zone_file, "example.net", "--json")
    doc = json.loads(out)
    mx_entries = [e for e in doc["listings"] if e["subject"] == LISTED_IP]
    assert any(e["zone"] == "listed.test" and e["status"] == "listed" for e in mx_entries)
    assert {f["check"] for f in doc["findings"]} >= {"mx", "spf", "dmarc", "dkim"}
    assert code == 1 and doc["verdict"] == "listed"  # the MX host's address is listed


def test_html_report_is_self_contained(world: DnsFixture, zone_file: Path, tmp_path: Path) -> None:
    """--html writes one page with inline CSS, no scripts or external resources."""
    page = tmp_path / "r.html"
    run(world, zone_file, LISTED_IP, "--html", str(page), "--zone", "listed.test")
    text = page.read_text()
    assert "<style>" in text and "<script" not in text and "<link" not in text
    assert "listed.test" in text and "https://listed.test/remove" in text


def test_list_zones_shows_builtin_catalogue() -> None:
    """--list-zones prints the shipped catalogue, closed lists marked, without any query."""
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app(), ["check", "--list-zones", "--nameserver", "127.0.0.1:9"]
    )
    assert result.exit_code == 0
    assert "zen.spamhaus.org" in result.output and "closed" in result.output


def test_list_zones_prints_records_for_scripts() -> None:
    """--list-zones --plain is one tab-separated line per zone, --json one array (docs/cli.md)."""
    runner = CliRunner(env={"COLUMNS": "300"})
    plain = runner.invoke(
        app(), ["check", "--list-zones", "--plain", "--nameserver", "127.0.0.1:9"]
    )
    rows = [line.split("\t") for line in plain.output.splitlines()]
    assert plain.exit_code == 0 and all(len(row) == 6 for row in rows)
    assert ["zen.spamhaus.org", "ip", "block", "yes", "Spamhaus", "-"] in rows
    listed = runner.invoke(
        app(), ["check", "--list-zones", "--json", "--nameserver", "127.0.0.1:9"]
    )
    zones = {z["zone"]: z for z in json.loads(listed.output)}
    assert len(zones) == len(rows) and zones["zen.spamhaus.org"]["closed"] == ""
    assert any(z["closed"] for z in zones.values())


def test_html_into_missing_folder_is_exit_2_before_any_query(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """An unwritable --html path is an error message and exit 2, found before checking."""
    before = world.count("25.100.51.198.listed.test")
    code, out = run(world, zone_file, LISTED_IP, "--html", str(tmp_path / "nope" / "x.html"))
    assert code == 2, out
    assert "error: --html" in out and "does not exist" in out and "Traceback" not in out
    assert world.count("25.100.51.198.listed.test") == before


def test_batch_out_into_missing_folder_is_exit_2(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """An unwritable --out path is an error message and exit 2, not a traceback and exit 1."""
    subjects = tmp_path / "ips.txt"
    subjects.write_text(f"{LISTED_IP}\n")
    code, out = run(world, zone_file, "--file", str(subjects), "--out",
                    str(tmp_path / "nope" / "x.csv"))  # fmt: skip
    assert code == 2, out
    assert "error: --out" in out and "Traceback" not in out


def test_unknown_format_is_rejected_before_the_output_is_truncated(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """--format xml exits 2 and leaves an existing output file as it was."""
    subjects = tmp_path / "ips.txt"
    subjects.write_text(f"{LISTED_IP}\n")
    out = tmp_path / "keep.csv"
    out.write_text("precious\n")
    code, text = run(world, zone_file, "--file", str(subjects), "--out", str(out),
                     "--format", "xml")  # fmt: skip
    assert code == 2 and "use csv or jsonl" in text
    assert out.read_text() == "precious\n"


def test_no_list_covering_the_subject_is_an_error(world: DnsFixture, zone_file: Path) -> None:
    """An IPv6 address with only IPv4-only lists selected is exit 2, not "clean on 0 lists"."""
    code, out = run(world, zone_file, "2001:db8::25", "--zone", "v4only.test", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["verdict"] == "error"
    assert "nothing was checked" in doc["error"] and "ipv6 = true" in doc["error"]


def test_empty_catalogue_is_an_error_saying_why(world: DnsFixture) -> None:
    """--no-builtin without any zone file leaves nothing to query: exit 2 with the reason."""
    result = CliRunner().invoke(
        app(), ["check", LISTED_IP, "--nameserver", world.nameserver, "--no-builtin"]
    )
    assert result.exit_code == 2
    assert "no lists to query" in result.output and "catalogue is empty" in result.output


def test_error_messages_keep_their_brackets(world: DnsFixture, tmp_path: Path) -> None:
    """Brackets in a message are text, not Rich markup: "([[zone]])" stays visible."""
    bad = tmp_path / "bad.toml"
    bad.write_text("zone = 3\n")
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app(), ["check", LISTED_IP, "--nameserver", world.nameserver, "--zone-file", str(bad)]
    )
    assert result.exit_code == 2
    assert "([[zone]])" in result.output


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["198.51.100.26"], "SUBJECT"),
        (["--html", "r.html"], "--html with --file"),
        (["--smtp"], "--smtp with --file"),
    ],
)
def test_file_rejects_options_it_would_ignore(
    world: DnsFixture, zone_file: Path, tmp_path: Path, extra: list[str], needle: str
) -> None:
    """--file with a positional subject, --html or --smtp is an error, not silently ignored."""
    subjects = tmp_path / "ips.txt"
    subjects.write_text(f"{LISTED_IP}\n")
    code, out = run(world, zone_file, "--file", str(subjects), *extra)
    assert code == 2 and needle in out


def test_out_without_file_is_rejected(world: DnsFixture, zone_file: Path, tmp_path: Path) -> None:
    """--out only means something with --file."""
    code, out = run(world, zone_file, LISTED_IP, "--out", str(tmp_path / "x.csv"))
    assert code == 2 and "use them with --file" in out


def test_smtp_with_a_domain_says_it_probes_nothing(world: DnsFixture, zone_file: Path) -> None:
    """--smtp on a domain is an error explaining to probe the MX addresses instead."""
    code, out = run(world, zone_file, "example.net", "--smtp")
    assert code == 2 and "--smtp probes one IP address" in out


def test_ipv4_mapped_address_is_shown_as_ipv4(world: DnsFixture, zone_file: Path) -> None:
    """::ffff:198.51.100.25 is queried and displayed as 198.51.100.25."""
    code, out = run(world, zone_file, f"::ffff:{LISTED_IP}", "--zone", "listed.test", "--json")
    doc = json.loads(out)
    assert doc["subject"] == LISTED_IP and code == 1


def test_domain_summary_counts_lists_per_subject(world: DnsFixture, zone_file: Path) -> None:
    """The domain's own lists and each MX host's lists are counted apart."""
    _, out = run(world, zone_file, "example.net", "--json", "--zone", "dbl.test",
                 "--zone", "bits.test", "--zone", "listed.test", "--zone", "clean.test")  # fmt: skip
    summary = json.loads(out)["summary"]
    assert summary.startswith("not listed on any of 2 domain lists; ")
    assert f"MX host {LISTED_IP} listed on 1 of 2 lists" in summary


def test_report_tables_show_brackets_literally(world: DnsFixture, zone_file: Path) -> None:
    """Findings quoting config keys ("[checker]") keep them in the terminal table."""
    code, out = run(world, zone_file, LISTED_IP, "--domain", "x.slow.test", "--zone",
                    "listed.test", "--dkim-selector", "default")  # fmt: skip
    assert code == 1
    assert "could not check SPF of x.slow.test" in out
    assert "nameserver in [checker]" in " ".join(out.split()).replace("│", "")


def test_dmarc_p_none_counts_as_one_problem(world: DnsFixture, zone_file: Path) -> None:
    """Regression: a p=none policy is one problem in the JSON and in the summary's count."""
    _, out = run(world, zone_file, LISTED_IP, "--domain", "none.example", "--json",
                 "--zone", "clean.test", "--dkim-selector", "default")  # fmt: skip
    doc = json.loads(out)
    problems = [f for f in doc["findings"] if f["severity"] in ("warning", "error")]
    about_none = [
        f for f in problems if "p=none" in f["message"] or "value of none" in f["message"]
    ]
    assert len(about_none) == 1, about_none
    assert f"{len(problems)} problem" in doc["summary"]
