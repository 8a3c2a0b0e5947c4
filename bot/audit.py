"""`make audit`: pip-audit against the lock file, saying plainly when it could not check.

pip-audit asks a vulnerability service (PyPI's JSON API, or OSV) about every pinned package.
Where that service is unreachable or empty (these development machines: only the package
index is reachable), pip-audit skips every package as "not found" and still prints "No
known vulnerabilities found" with exit code 0. This runs it with JSON output and decides:
exit 0 only when every package was audited and none has a known vulnerability, 1 when some
have one (listed), 2 when it could not audit everything (said in one sentence, no stack
trace). SECURITY.md lists the advisories known for the pinned stack by hand.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def verdict(report: Dict[str, Any]) -> tuple[int, List[str]]:
    """Exit code and the lines to print for a pip-audit JSON report."""
    deps = list(report.get("dependencies", []))
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    lines = [f"{d['name']} {d.get('version', '')}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or ['-'])})"
             for d in vulnerable for v in d["vulns"]]
    if deps and len(skipped) == len(deps):
        return 2, [
            f"pip-audit could not check anything: all {len(deps)} pinned packages came back "
            "'not found', so no vulnerability database was reachable from this machine. Run "
            "`make audit` where https://pypi.org/pypi/<package>/json (or https://api.osv.dev) is "
            "reachable, e.g. in CI; until then see SECURITY.md."
        ]
    if vulnerable:
        return 1, [f"{len(vulnerable)} of {len(deps)} pinned packages have known vulnerabilities:", *lines,
                   "See SECURITY.md for whether each is reachable in this deployment."]
    if skipped:
        return 2, [f"no known vulnerabilities in {len(deps) - len(skipped)} audited packages, but "
                   f"{len(skipped)} could not be audited: " + ", ".join(d["name"] for d in skipped)]
    return 0, [f"{len(deps)} pinned packages audited: no known vulnerabilities"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run pip-audit on the lock file and print the verdict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pip-audit", default="pip-audit", help="the pip-audit executable")
    parser.add_argument("--requirements", default=str(PROJECT_ROOT / "constraints.txt"))
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)
    command = [args.pip_audit, "-r", args.requirements, "--no-deps", "--disable-pip",
               "--progress-spinner", "off", "--format", "json"]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except FileNotFoundError:
        print(f"pip-audit is not installed ({args.pip_audit}); `make audit` installs it from PyPI")
        return 2
    except subprocess.TimeoutExpired:
        print(f"pip-audit did not finish in {args.timeout:.0f} s: the vulnerability service is unreachable")
        return 2
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit could not check the lock file (exit {run.returncode}): {last}")
        return 2
    code, lines = verdict(report)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
