"""Make the "mix" rbldnsd file and its store: 1M hosts with ranges and `!` lines among them.

Run: python bench/mixed_file.py --work W [--size 1000000] [--port 21370]
Then: python bench/first_answer_ab.py --work W --rounds 5 old=<src> new=<src>

The hosts are `bulk_pipeline.make_file`'s (seed 16, under ``:127.0.0.2:spam source $``). After
every 100th host comes that host's own /24 (once per /24), and after every 1,000th an
exclusion of another address of that /24, which `import rbldnsd` cuts the range around (eight
CIDRs, one of them a host that names the range). Stored by id in the import's order, every
8,192-id window of the snapshot build's read holds ~135 such rows among its hosts.
W/mix.ip4set is the file, W/serve the store after ``reputable import rbldnsd`` (its config from
`reputable.testing.write_config`, DNS on 127.0.0.1:PORT), the layout `first_answer_ab` reads.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulk_pipeline import ZONE, make_file

from reputable.testing import write_config


def mix(plain: Path, out: Path) -> int:
    """Write *plain*'s hosts to *out* with ranges and exclusions among them; return the
    number of ranges."""
    lines = plain.read_text().splitlines()
    written = [lines[0]]
    seen: set[str] = set()
    for index, host in enumerate(lines[1:], start=1):
        written.append(host)
        net, _, last = host.rpartition(".")
        if index % 100 == 0 and net not in seen:
            seen.add(net)
            written.append(f"{net}.0/24")
            if index % 1000 == 0:
                written.append(f"!{net}.{int(last) ^ 1}")
    out.write_text("\n".join(written) + "\n")
    return len(seen)


def main() -> None:
    """Write the file, make the store, import the file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/mix-bench"))
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--port", type=int, default=21370)
    args = parser.parse_args()
    work: Path = args.work
    serve = work / "serve"
    subprocess.run(["rm", "-rf", str(serve)], check=True)
    serve.mkdir(parents=True)
    plain = work / "plain.hosts"
    make_file(plain, args.size)
    data = work / "mix.ip4set"
    ranges = mix(plain, data)
    plain.unlink()
    print(f"{data}: {args.size:,} hosts, {ranges:,} ranges", flush=True)
    config = write_config(serve, dns_port=args.port)
    argv = ["reputable", "--config", str(config), "import", "rbldnsd", str(data), "--zone", ZONE]
    subprocess.run(argv, check=True)


if __name__ == "__main__":
    main()
