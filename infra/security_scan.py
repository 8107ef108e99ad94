"""checkov on template.yaml, as SAM wrote it and as CloudFormation receives it; fails on any finding without a reason.

    python -m infra.security_scan [--checkov PATH] [--template template.yaml]

checkov reads SAM functions itself, but the roles, event source mappings and permissions SAM generates exist only in
the translated template, so both are scanned. A check is skipped only in a resource's ``Metadata.checkov.skip`` with
a ``comment`` giving the reason; a skip without one fails the scan. A generated role has no Metadata of its own: the
skips of IAM checks (``CKV_AWS_1xx`` on roles) written on a function are carried to the role SAM makes for it, and
the function URL check (``CKV_AWS_258``) to its generated URL.

checkov lives in its own virtual environment (``make security-scan`` creates ``.venv-checkov``): it pins boto3 and
other packages to versions the project's environment cannot take.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from infra.sam_deploy import load_template, package, translate

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
# IAM checks that report on a function's generated role rather than on the function.
ROLE_CHECKS: Final = frozenset({"CKV_AWS_107", "CKV_AWS_108", "CKV_AWS_109", "CKV_AWS_110", "CKV_AWS_111"})
# The resources SAM generates for a function (by the suffix of their logical id) and the checks reporting on them.
GENERATED_CHECKS: Final = {"Role": ROLE_CHECKS, "Url": frozenset({"CKV_AWS_258"})}
MIN_REASON_CHARS: Final = 20


def unexplained_skips(template: Mapping[str, Any]) -> list[str]:
    """``<resource>: <check id>`` for every checkov skip in the template's Metadata without a real reason."""
    problems = []
    for logical_id, resource in template.get("Resources", {}).items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            if len(str(skip.get("comment", "")).strip()) < MIN_REASON_CHARS:
                problems.append(f"{logical_id}: {skip.get('id', '<no id>')} is skipped without a reason")
    return problems


def translated(template_path: Path) -> dict[str, Any]:
    """The template as CloudFormation receives it (offline SAM translation), with role skips carried over."""
    sam_template = load_template(template_path)
    packaged, _ = package(sam_template, template_path.parent, lambda key, _body: f"s3://artifacts/{key}")
    template = translate(packaged, {}, "us-east-1")
    resources = template["Resources"]
    for logical_id, resource in sam_template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function" or "Role" in resource.get("Properties", {}):
            continue
        skips = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        for suffix, checks in GENERATED_CHECKS.items():
            carried = [skip for skip in skips if skip.get("id") in checks]
            generated = resources.get(f"{logical_id}{suffix}")
            if carried and generated is not None:
                generated.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", []).extend(carried)
    return template


def run_checkov(checkov: str, path: Path) -> tuple[int, list[str]]:
    """(failed count, one line per failed check) of checkov on one CloudFormation file."""
    completed = subprocess.run(
        [checkov, "--file", str(path), "--framework", "cloudformation", "--skip-download", "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(completed.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise SystemExit(f"checkov gave no report for {path}:\n{completed.stdout}\n{completed.stderr}") from exc
    reports = report if isinstance(report, list) else [report]
    failures = []
    for part in reports:
        for check in part.get("results", {}).get("failed_checks", []):
            failures.append(f"{path.name}: {check['check_id']} {check['resource']}: {check['check_name']}")
    return len(failures), failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.security_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkov", default=str(PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"))
    parser.add_argument("--template", type=Path, default=PROJECT_ROOT / "template.yaml")
    parser.add_argument("--out-dir", type=Path, default=PROJECT_ROOT / "build")
    args = parser.parse_args(argv)

    problems = unexplained_skips(load_template(args.template))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    cloudformation = args.out_dir / "template.translated.json"
    cloudformation.write_text(json.dumps(translated(args.template), indent=1), encoding="utf-8")
    for path in (args.template, cloudformation):
        _, failures = run_checkov(args.checkov, path)
        problems.extend(failures)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"checkov: {len(problems)} unexplained finding(s) in {args.template.name} and its translation")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
