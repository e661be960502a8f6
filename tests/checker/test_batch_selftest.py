"""Batch checks streamed to CSV or JSON lines, and the zone self-test, over loopback."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from reputable.checker.catalogue import load_zone_file
from reputable.checker.model import Status, ZoneResult
from reputable.checker.selftest import Health, judge
from tests.checker.conftest import GENERIC_IP, LISTED_IP
from tests.checker.dnsfixture import DnsFixture
from tests.checker.test_cli import app


def invoke(world: DnsFixture, zone_file: Path, *args: str) -> tuple[int, str]:
    """Run ``check`` with the fixture and test catalogue."""
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app(),
        ["check", "--nameserver", world.nameserver, "--timeout", "0.2", "--no-builtin",
         "--zone-file", str(zone_file), *args],
    )  # fmt: skip
    return result.exit_code, result.output


def test_batch_to_csv_survives_bad_lines(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """Every line gets a row; a bad subject is an error row and the batch goes on."""
    subjects = tmp_path / "ips.txt"
    subjects.write_text(f"# my servers\n{LISTED_IP}\nnot_an_ip!\n\n{GENERIC_IP}  # spare\n")
    out = tmp_path / "results.csv"
    code, _ = invoke(world, zone_file, "--file", str(subjects), "--out", str(out),
                     "--zone", "listed.test", "--zone", "clean.test")  # fmt: skip
    rows = {r["subject"]: r for r in csv.DictReader(out.read_text().splitlines())}
    assert set(rows) == {LISTED_IP, "not_an_ip!", GENERIC_IP}
    assert rows[LISTED_IP]["verdict"] == "listed" and rows[LISTED_IP]["listed_on"] == "listed.test"
    assert rows[GENERIC_IP]["verdict"] == "clean"
    assert rows["not_an_ip!"]["verdict"] == "error" and "not_an_ip!" in rows["not_an_ip!"]["error"]
    assert code == 1


def test_batch_jsonl_has_one_document_per_subject(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """JSON lines output carries the full --json document for each subject."""
    subjects = tmp_path / "ips.txt"
    subjects.write_text("\n".join(f"198.51.100.{i}" for i in range(1, 41)))
    out = tmp_path / "results.jsonl"
    code, _ = invoke(world, zone_file, "--file", str(subjects), "--out", str(out),
                     "--zone", "clean.test", "--no-diagnostics")  # fmt: skip
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(d["subject"] for d in docs) == sorted(f"198.51.100.{i}" for i in range(1, 41))
    assert {d["verdict"] for d in docs} == {"clean"} and code == 0


def test_missing_subject_file_is_a_clear_error(world: DnsFixture, zone_file: Path) -> None:
    """A --file that does not exist exits 2 naming the file."""
    code, out = invoke(world, zone_file, "--file", "/nonexistent/ips.txt")
    assert code == 2 and "/nonexistent/ips.txt" in out


def test_selftest_flags_dead_world_refused_and_silent_zones(
    world: DnsFixture, zone_file: Path
) -> None:
    """Test points find the healthy zone, the dead one, the one listing the world and the rest."""
    code, out = invoke(world, zone_file, "--selftest", "--zone", "listed.test",
                       "--zone", "odd.test", "--zone", "world.test", "--zone", "rcode.test",
                       "--zone", "slow.test", "--zone", "dbl.test")  # fmt: skip
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    assert "ok" in lines["listed.test"] and "ok" in lines["dbl.test"]
    assert "dead" in lines["odd.test"]
    assert "lists_world" in lines["world.test"]
    assert "refused" in lines["rcode.test"]
    assert "no_answer" in lines["slow.test"]
    assert code == 1


def test_selftest_prints_records_for_scripts(world: DnsFixture, zone_file: Path) -> None:
    """--plain gives one tab-separated zone/health/detail line per zone, --json one array."""
    zones = ("--zone", "listed.test", "--zone", "odd.test")
    code, out = invoke(world, zone_file, "--selftest", *zones, "--plain")
    rows = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}
    assert set(rows) == {"listed.test", "odd.test"} and code == 1
    assert rows["listed.test"][1] == "ok" and rows["odd.test"][1] == "dead"
    code, out = invoke(world, zone_file, "--selftest", *zones, "--json")
    health = {r["zone"]: r["health"] for r in json.loads(out)}
    assert health == {"listed.test": "ok", "odd.test": "dead"} and code == 1


def test_judge_prefers_refusal_over_dead() -> None:
    """A refused test point says 'check your resolver', not 'the zone is dead'."""
    zone = load_zone_file(Path(__file__).parent / "data" / "zones.toml")[0]
    refused = ZoneResult(zone=zone.name, allow=False, status=Status.REFUSED, meaning="quota")
    assert judge(zone, refused, None).health is Health.REFUSED


def test_batch_rejects_lines_that_are_no_subject(
    world: DnsFixture, zone_file: Path, tmp_path: Path
) -> None:
    """ "not_an ip" and a one-label name are error rows, not the clean domain "not_an"."""
    subjects = tmp_path / "ips.txt"
    subjects.write_text(f"{LISTED_IP}\nnot_an ip\nlocalhost\n")
    out = tmp_path / "results.csv"
    invoke(world, zone_file, "--file", str(subjects), "--out", str(out), "--zone", "listed.test",
           "--zone", "dbl.test")  # fmt: skip
    rows = {r["subject"]: r for r in csv.DictReader(out.read_text().splitlines())}
    assert set(rows) == {LISTED_IP, "not_an ip", "localhost"}
    assert rows["not_an ip"]["verdict"] == "error" and rows["localhost"]["verdict"] == "error"
    assert "fully qualified" in rows["localhost"]["error"]
