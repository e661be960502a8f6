"""`reputable integrate TARGET`: each snippet accepted by the real tool's own checker."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, parse_config
from reputable.core.address import Domain
from reputable.core.cause import Cause
from reputable.listings.model import Listing
from reputable.publication.exports import rpz
from reputable.publication.integrations import TARGETS
from reputable.publication.integrations.context import context_of
from reputable.testing import cli, free_port, write_config

CUSTOM = (
    DEFAULT_TOML.replace('name = "bl.reputable.test"', 'name = "bl.example.net"').replace(
        "[policy_service]", ""
    )
    + '\n[policy_service]\nlisten = "127.0.0.1:10555"\n'
)


def snippet(target: str, tmp_path: Path, text: str = DEFAULT_TOML) -> str:
    """Return the snippet of *target* for the configuration *text*, RPZ file under *tmp_path*."""
    config = parse_config(text, tmp_path / "reputable.toml")
    return TARGETS[target](context_of(config, rpz_file=tmp_path / "bl.rpz"))


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a checker and return its result."""
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd, timeout=60)


def need(tool: str, package: str) -> str:
    """Return the path of *tool*, or skip naming the Debian package that has it."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"needs {tool} (Debian package {package})")
    return path


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_target_names_our_zones_and_addresses(target: str, tmp_path: Path) -> None:
    """Every snippet follows the configuration: zone names, policy port, DNS port."""
    text = snippet(target, tmp_path, CUSTOM)
    if target in ("nftables", "crowdsec-bouncer"):
        assert "table" in text
        return
    assert "bl.example.net" in text
    assert re.search(r"(?<![\w.])bl\.reputable\.test", text) is None  # only dbl/wl stay
    if target == "postfix":
        assert "inet:127.0.0.1:10555" in text


def test_postfix_and_postscreen_pass_postconf_and_postfix_check(tmp_path: Path) -> None:
    """main.cf with both snippets: postconf warns about nothing and `postfix check` passes."""
    need("postconf", "postfix")
    folder = tmp_path / "postfix"
    (folder / "queue").mkdir(parents=True)
    (folder / "data").mkdir()
    shutil.copy("/etc/postfix/master.cf", folder / "master.cf")
    (folder / "main.cf").write_text(
        f"queue_directory = {folder}/queue\ndata_directory = {folder}/data\n"
        "compatibility_level = 3.6\n"
        + snippet("postfix", tmp_path)
        + snippet("postscreen", tmp_path)
    )
    shown = run(["postconf", "-c", str(folder), "-n"])
    assert shown.returncode == 0
    assert "warning" not in shown.stderr, shown.stderr
    assert "check_policy_service { inet:127.0.0.1:10040" in shown.stdout
    assert "postscreen_dnsbl_sites = bl.reputable.test=127.0.0.2*3," in shown.stdout
    checked = run(["postfix", "-c", str(folder), "check"])
    assert checked.returncode == 0, checked.stderr
    assert "warning" not in checked.stderr, checked.stderr


def test_postconf_would_catch_a_misspelt_parameter(tmp_path: Path) -> None:
    """The check above is meaningful: postconf warns about a parameter it does not know."""
    need("postconf", "postfix")
    (tmp_path / "main.cf").write_text("postscreen_dnsbl_treshold = 3\n")
    assert "unused parameter" in run(["postconf", "-c", str(tmp_path), "-n"]).stderr


def test_unbound_snippet_passes_unbound_checkconf(tmp_path: Path) -> None:
    """The include file, with the RPZ export it names, passes unbound-checkconf."""
    need("unbound-checkconf", "unbound")
    (tmp_path / "bl.rpz").write_text(rpz.render([], []).text)
    (tmp_path / "reputable.conf").write_text(snippet("unbound", tmp_path))
    main = tmp_path / "unbound.conf"
    main.write_text(
        f'server:\n  username: ""\n  chroot: ""\n  directory: "{tmp_path}"\n'
        f'include: "{tmp_path}/reputable.conf"\n'
    )
    checked = run(["unbound-checkconf", str(main)])
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_nftables_boot_file_passes_nft_check(tmp_path: Path) -> None:
    """The boot-time table file passes `nft -c -f`."""
    need("nft", "nftables")
    path = tmp_path / "reputable.nft"
    path.write_text(snippet("nftables", tmp_path))
    checked = run(["nft", "-c", "-f", str(path)])
    assert checked.returncode == 0, checked.stderr


def test_crowdsec_bouncer_yaml_passes_its_config_test(tmp_path: Path) -> None:
    """crowdsec-firewall-bouncer -t accepts the generated configuration."""
    tool = need("crowdsec-firewall-bouncer", "crowdsec-firewall-bouncer")
    path = tmp_path / "bouncer.yaml"
    path.write_text(snippet("crowdsec-bouncer", tmp_path))
    checked = run([tool, "-t", "-c", str(path)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "config is valid" in checked.stdout + checked.stderr
    custom = DEFAULT_TOML.replace('listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:8181"')
    assert "api_url: http://127.0.0.1:8181/" in snippet("crowdsec-bouncer", tmp_path, custom)


def test_bind_snippet_passes_named_checkconf(tmp_path: Path) -> None:
    """named.conf statements pass named-checkconf -z (the RPZ file loads as a zone)."""
    tool = need("named-checkconf", "bind9-utils")
    (tmp_path / "bl.rpz").write_text(rpz.render([], []).text)
    path = tmp_path / "named.conf"
    path.write_text(snippet("bind", tmp_path).replace("/var/cache/bind", str(tmp_path)))
    checked = run([tool, "-z", str(path)])
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_exim_acl_passes_exim_bv(tmp_path: Path) -> None:
    """An Exim configuration with the ACL statements passes `exim -bV`."""
    tool = need("exim", "exim4-daemon-light")
    conf = tmp_path / "exim.conf"
    conf.write_text(
        "acl_smtp_rcpt = acl_check_rcpt\nbegin acl\nacl_check_rcpt:\n"
        + snippet("exim", tmp_path)
        + "  accept\n"
    )
    checked = run([tool, "-C", str(conf), "-bV"])
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_spamassassin_rules_pass_lint(tmp_path: Path) -> None:
    """The rules pass `spamassassin --lint` with them as the only site config."""
    tool = need("spamassassin", "spamassassin")
    site = tmp_path / "site"
    site.mkdir()
    for pre in Path("/etc/spamassassin").glob("*.pre"):  # the plugin loads (URIDNSBL, DNSEval)
        shutil.copy(pre, site)
    (site / "reputable.cf").write_text(snippet("spamassassin", tmp_path))
    checked = run([tool, "--lint", "-D", "config", "--siteconfigpath", str(site)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "reputable.cf" in checked.stderr  # the file was read, not skipped


def test_rspamd_config_passes_configtest(tmp_path: Path) -> None:
    """rspamd's rbl module accepts the generated local.d/rbl.conf (rspamadm configtest)."""
    tool = need("rspamadm", "rspamd")
    local = tmp_path / "local.d"
    local.mkdir()
    (local / "rbl.conf").write_text(snippet("rspamd", tmp_path))
    argv = [tool, f"--var=LOCAL_CONFDIR={tmp_path}", "configtest", "-c", "/etc/rspamd/rspamd.conf"]
    checked = run(argv)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (local / "rbl.conf").write_text("rbls { broken {{{")  # the check reads our file: it fails
    assert run(argv).returncode != 0


def test_integrate_cli_refuses_unknown_targets(tmp_path: Path) -> None:
    """An unknown target is a one-line error listing the targets."""
    config = write_config(tmp_path, dns_port=free_port())
    done = cli(config, "integrate", "sendmail", check=False)
    assert done.returncode == 2
    assert "use one of postfix, postscreen" in done.stderr
    shown = cli(config, "integrate", "postfix").stdout
    assert "reject_rbl_client bl.reputable.test=127.0.0.[2;3;4;5;6;7;9;10]" in shown


@pytest.mark.slow
@pytest.mark.netns
def test_knot_resolver_enforces_the_rpz_in_a_namespace(tmp_path: Path) -> None:
    """kresd with the `integrate knot-resolver` lines: listed name NXDOMAIN, unlisted resolves.

    kresd runs inside a network namespace with only loopback and its outgoing queries bound
    to 127.0.0.1, its trust-anchor and time-skew modules off: nothing can leave the test.
    """
    need("kresd", "knot-resolver")
    need("nsd", "nsd")
    need("dig", "bind9-dnsutils")
    from tests.publication.exports.netns import namespace, run_in
    from tests.publication.exports.resolvers import ZONE

    (tmp_path / "bl.rpz").write_text(rpz.render([_malware("bad.example.test")], []).text)
    (tmp_path / "example.test.zone").write_text(ZONE)
    (tmp_path / "nsd.conf").write_text(
        f'server:\n  ip-address: 127.0.0.1@5354\n  port: 5354\n  zonesdir: "{tmp_path}"\n'
        f'  pidfile: "{tmp_path}/nsd.pid"\n  database: ""\n  zonelistfile: "{tmp_path}/zl"\n'
        f'  xfrdfile: "{tmp_path}/xfrd"\n  xfrdir: "{tmp_path}"\n  logfile: "{tmp_path}/nsd.log"\n'
        '  username: ""\n  chroot: ""\n  server-count: 1\nremote-control:\n  control-enable: no\n'
        f'zone:\n  name: example.test\n  zonefile: "{tmp_path}/example.test.zone"\n'
    )
    (tmp_path / "kresd.conf").write_text(
        "net.listen('127.0.0.1', 53, { kind = 'dns' })\n"
        "net.outgoing_v4('127.0.0.1')\n"
        f"cache.open(10 * MB, 'lmdb://{tmp_path}/cache')\n"
        "trust_anchors.remove('.')\n"
        "for _, m in ipairs({'ta_update', 'ta_signal_query', 'detect_time_skew', 'priming'}) do\n"
        "  pcall(modules.unload, m)\n"
        "end\n"
        + snippet("knot-resolver", tmp_path)  # first: kresd applies the first matching rule
        + "policy.add(policy.suffix(policy.STUB({'127.0.0.1@5354'}),"
        " policy.todnames({'example.test'})))\n"
    )
    with namespace() as ns, contextlib.ExitStack() as stack:
        daemons = []
        for argv in (
            ["nsd", "-d", "-c", str(tmp_path / "nsd.conf")],
            ["kresd", "-n", "-c", str(tmp_path / "kresd.conf"), str(tmp_path)],
        ):
            err = stack.enter_context((tmp_path / f"{argv[0]}.err").open("w"))
            daemons.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", ns, *argv], stdout=subprocess.DEVNULL, stderr=err
                )
            )
        try:
            dig = ["dig", "+tries=1", "+time=2", "@127.0.0.1", "-p", "53"]
            good = ""
            deadline = time.monotonic() + 120  # NSD's and kresd's start, on a loaded machine
            while time.monotonic() < deadline:
                good = run_in(ns, [*dig, "good.example.test", "A"]).stdout
                if "status: NOERROR" in good:
                    break
                time.sleep(0.2)
            bad = run_in(ns, [*dig, "bad.example.test", "A"]).stdout
            sub = run_in(ns, [*dig, "www.bad.example.test", "A"]).stdout
        finally:
            for proc in daemons:
                proc.terminate()
                proc.wait(timeout=10)
    errors = (tmp_path / "kresd.err").read_text()
    assert "status: NOERROR" in good and "192.0.2.80" in good, good + errors
    assert "status: NXDOMAIN" in bad, bad
    assert "status: NXDOMAIN" in sub, sub


def _malware(name: str) -> Listing:
    """Return a malware_host listing of domain *name*."""
    return Listing(
        subject=Domain(name),
        cause=Cause.MALWARE_HOST,
        reason="r",
        source="t",
        listed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
