"""cadence: manage campaigns in a deployed stack.

    cadence campaign validate FILE
    cadence campaign deploy FILE
    cadence campaign list
    cadence campaign show ID
    cadence campaign preview FILE [--members OUT.csv]
    cadence campaign pause ID | resume ID | cancel ID
    cadence campaign run-now ID
    cadence campaign retry-failed RUN_ID
    cadence campaign report RUN_ID [--window-days N] [--open [--out DIR]]
    cadence customer show ID [--days N]
    cadence customer erase ID

Every command takes --stack-name (default $CADENCE_STACK_NAME, else cadence-dev), --endpoint-url (e.g.
http://127.0.0.1:4566 for the local stack) and --json. The stack's resources come from its CloudFormation Outputs.
"""

import argparse
import csv
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from cadence import campaign_control, campaign_report, campaign_runs, customer_timeline, run_report
from cadence.campaigns import html_report
from cadence.campaigns.lifecycle import IllegalTransitionError, State
from cadence.campaigns.plan import Plan
from cadence.config import CampaignSettings
from cadence.dal import campaigns_table, lambdas
from cadence.dal.campaigns_table import StoredCampaign
from cadence.errors import CadenceError, InvalidInputError
from cadence_cli import render, stack

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
_SAMPLE_MEMBERS = 5


def _validate(args: argparse.Namespace) -> int:
    definition = stack.load_definition(args.file)
    if args.json:
        render.emit_json({"file": str(args.file), "valid": True, "campaign_id": definition.campaign_id})
    else:
        render.line(f"{args.file}: valid campaign {definition.campaign_id}")
    return EXIT_OK


def _deploy(args: argparse.Namespace) -> int:
    definition = stack.load_definition(args.file)
    state = stack.deploy(definition, _outputs(args))
    if args.json:
        render.emit_json({"campaign_id": definition.campaign_id, "state": state.value})
    else:
        render.line(f"stored campaign {definition.campaign_id}: {state.value}")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    table = stack.output(_outputs(args), "CampaignsTableName")
    rows = sorted(
        (_summary(stored) for stored in campaigns_table.list_campaigns(table)), key=lambda row: row["campaign_id"]
    )
    if args.json:
        render.emit_json({"campaigns": rows})
        return EXIT_OK
    columns = ("campaign_id", "name", "state", "channels", "schedule")
    render.table("campaigns", columns, ([row[column] for column in columns] for row in rows))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    outputs = _outputs(args)
    table = stack.output(outputs, "CampaignsTableName")
    stored = _deployed(table, args.campaign_id)
    runs = campaigns_table.list_runs(table, args.campaign_id, limit=args.runs)
    if sends := outputs.get("SendsTableName"):
        # What dispatch made of each run's sends (one Query per run): outcomes adding up to what was queued.
        for run in runs:
            run_id = str(run["run_id"])
            run["sends_by_outcome"] = run_report.run_counters(sends, run_id, run_report.queued_sends(run))
            if not run["sends_by_outcome"]["unsettled"] and run_report.complete_if_settled(
                table, sends, args.campaign_id, run_id
            ):
                # Every send was settled but the run's counter fell short (a worker died between two writes).
                run["status"] = campaigns_table.RunStatus.COMPLETED.value
    for run in runs:
        run["replies"] = _reply_counts(run)
    summary = _summary(stored)
    if args.json:
        lifecycle = {key: summary[key] for key in ("state", "state_reason", "state_changed_at")}
        campaign = {**stored.definition, **lifecycle, "schedule_text": summary["schedule"]}
        render.emit_json({"campaign": campaign, "runs": runs})
        return EXIT_OK
    definition = stored.definition
    audience = yaml.safe_dump(definition.get("audience"), default_flow_style=True, sort_keys=False).strip()
    details = {
        **{key: value for key, value in summary.items() if value is not None},
        "holdout_percent": definition.get("holdout_percent"),
        "audience": audience,
        "offer": definition.get("offer"),
        "variants": [variant["name"] for variant in definition.get("variants", [])],
    }
    render.table(f"campaign {args.campaign_id}", ("", ""), details.items())
    columns = (
        "run_id",
        "status",
        "started_at",
        "audience_size",
        "members_by_state",
        "sends_by_channel",
        "sends_by_outcome",
        # Only once a run has replies: a stack without two-way messaging keeps the table as wide as before.
        *(("replies",) if any(run["replies"] for run in runs) else ()),
    )
    render.table("last runs", columns, ([run.get(column) for column in columns] for run in runs))
    return EXIT_OK


def _preview(args: argparse.Namespace) -> int:
    definition = stack.load_definition(args.file)
    settings = stack.campaign_settings(_outputs(args))
    plan = campaign_runs.preview(definition, settings, args.at)
    rows = [member.row() for member in plan.members]
    if args.members:
        _write_members(args.members, rows)
    report = _plan_report(plan)
    if args.json:
        sample = rows[: args.sample]
        render.emit_json({**report, "sample_members": sample, "members_file": str(args.members or "") or None})
        return EXIT_OK
    render.line(f"preview of {definition.campaign_id} at {args.at:%Y-%m-%dT%H:%M:%SZ} (nothing written, nothing sent)")
    render.line(f"considered {report['considered']} scored customers; audience {report['audience']}")
    render.counts("members by state", report["members_by_state"], total=report["audience"])
    render.counts("members by variant", report["members_by_variant"])
    render.counts("sends by channel", report["sends_by_channel"])
    if rows:
        columns = list(rows[0])
        render.table("sample members", columns, ([row[column] for column in columns] for row in rows[: args.sample]))
    if args.members:
        render.line(f"wrote {len(rows)} members to {args.members}")
    return EXIT_OK


def _move(name: str, move: Callable[[str, CampaignSettings], State]) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        state = move(args.campaign_id, stack.campaign_settings(_outputs(args)))
        if args.json:
            render.emit_json({"campaign_id": args.campaign_id, "state": state.value})
        else:
            render.line(f"campaign {args.campaign_id} {name}: {state.value}")
        return EXIT_OK

    return command


def _run_now(args: argparse.Namespace) -> int:
    outputs = _outputs(args)
    _deployed(stack.output(outputs, "CampaignsTableName"), args.campaign_id)
    name = stack.run_now(args.campaign_id, outputs)
    if args.json:
        render.emit_json({"campaign_id": args.campaign_id, "schedule_name": name})
    else:
        render.line(f"scheduled one-time run {name}")
    return EXIT_OK


def _history(args: argparse.Namespace) -> int:
    outputs = _outputs(args)
    versions = stack.history(args.campaign_id, outputs)
    if not versions:
        raise InvalidInputError(f"campaign {args.campaign_id} has no stored versions")
    if args.json:
        render.emit_json({"campaign_id": args.campaign_id, "versions": versions})
        return EXIT_OK
    rows = [
        (number, version["stored_at"], version["stored_by"], version["definition"].get("name"))
        for number, version in enumerate(versions, start=1)
    ]
    render.table(f"campaign {args.campaign_id}: stored versions", ("#", "stored at", "stored by", "name"), rows)
    return EXIT_OK


def _erase(args: argparse.Namespace) -> int:
    outputs = _outputs(args)
    report = lambdas.invoke_sync(stack.output(outputs, "ErasureFunctionName"), {"customer_id": args.customer_id})
    if args.json:
        render.emit_json(report)
        return EXIT_OK
    render.counts(f"customer {args.customer_id} erased: items and entries removed", report["tables"])
    render.line(f"files rewritten without the customer: {len(report['objects_rewritten'])}")
    for key in report["objects_rewritten"]:
        render.line(f"  {key}")
    render.line(f"files deleted whole (not text): {len(report['objects_deleted'])}")
    for key in report["objects_deleted"]:
        render.line(f"  {key}")
    render.line(f"earlier object versions deleted: {report['versions_deleted']}")
    render.line(f"kept: tombstone {report['tombstone']} (hashed id) and erasure suppressions of the addresses")
    return EXIT_OK


def _customer_show(args: argparse.Namespace) -> int:
    sources = stack.timeline_sources(_outputs(args))
    profile, events = customer_timeline.customer_timeline(args.customer_id, sources, days=args.days)
    if profile is None and not events:
        raise InvalidInputError(f"customer {args.customer_id} is not known to the stack")
    if args.json:
        render.emit_json({"customer_id": args.customer_id, "profile": profile, "timeline": [asdict(e) for e in events]})
        return EXIT_OK
    if profile is not None:
        consent = ", ".join(
            f"{channel} {'yes' if profile.get(f'consent_{channel}') is True else 'no'}" for channel in ("email", "sms")
        )
        quiet = f"; quiet until {profile['quiet_until']}" if profile.get("quiet_until") else ""
        render.line(f"customer {args.customer_id}: consent {consent}{quiet}")
    rows = [
        (event.at, event.kind, event.channel, event.summary, _shortened(event.detail.get("text"))) for event in events
    ]
    render.table(f"customer {args.customer_id}: the last {args.days} days", ("at", "what", "channel", "", "text"), rows)
    return EXIT_OK


def _reply_counts(run: Mapping[str, Any]) -> dict[str, int]:
    """The run's replies (cadence.conversations.inbound): all of them, opt-outs by the word used, routed to a person."""
    return {
        name.removeprefix("feedback_"): int(count)
        for name, count in sorted(run.items())
        if name in {"feedback_reply", "feedback_routed"} or name.startswith("feedback_opt_out_")
    }


def _shortened(text: Any, limit: int = 60) -> str | None:
    if text is None:
        return None
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _retry_failed(args: argparse.Namespace) -> int:
    outputs = _outputs(args)
    campaign_id = args.run_id.partition("@")[0]
    queued = run_report.retry_failed(stack.campaign_settings(outputs), campaign_id, args.run_id)
    if args.json:
        render.emit_json({"run_id": args.run_id, "sends_requeued": queued})
    else:
        render.line(f"run {args.run_id}: {queued} failed or unsettled sends queued again (none in doubt)")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    settings = stack.campaign_settings(_outputs(args))
    report = campaign_report.build_report(settings, args.run_id, window_days=args.window_days)
    json_key, html_key = campaign_report.publish(settings.data_bucket, report)
    local = None
    if args.open:
        local = args.out / f"{Path(campaign_report.report_prefix(report['campaign_id'], report['run_id'])).name}.html"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(html_report.render(report), encoding="utf-8")
    if args.json:
        render.emit_json(
            {**report, "report_key": json_key, "html_key": html_key, "html_file": str(local or "") or None}
        )
        return EXIT_OK
    window = report["window"]
    render.line(
        f"run {report['run_id']}: attribution window {window['days']} days to {window['end']}"
        f" ({'closed' if window['closed'] else 'still open'})"
    )
    render.counts("members by state", report["members_by_state"])
    render.table("orders attributed to the run", ("", ""), report["attribution"].items())
    columns = ("segment", "treated", "holdout", "metric", "treated_mean", "holdout_mean", "difference", "95% CI", "p")
    segments = [
        ("", report["overall"]),
        *(("variant ", segment) for segment in report["by_variant"]),
        *(("decile ", segment) for segment in report["by_decile"]),
    ]
    rows = [row for label, segment in segments for row in _uplift_rows(label, segment)]
    render.table("uplift: treated minus holdout", columns, rows)
    if any(segment["approximate"] for _, segment in segments):
        render.line(f"* fewer than {campaign_report.MIN_CONVERTERS} converters in a group: the interval is approximate")
    render.line(f"wrote s3://{settings.data_bucket}/{json_key} and s3://{settings.data_bucket}/{html_key}")
    if local is not None:
        render.line(f"HTML report: {local.resolve()}")
    return EXIT_OK


def _uplift_rows(label: str, segment: Mapping[str, Any]) -> list[list[Any]]:
    rows = []
    for metric in ("conversion", "revenue_per_customer", "conversion_per_messaged"):
        estimate = segment[metric]

        def number(value: float | None, metric: str = metric) -> str:
            if value is None:
                return ""
            return f"{value:,.2f}" if metric == "revenue_per_customer" else f"{value * 100:.2f}%"

        interval = f"[{number(estimate['low'])}, {number(estimate['high'])}]" if estimate["low"] is not None else ""
        rows.append(
            [
                f"{label}{segment['segment']}{' *' if segment['approximate'] else ''}"
                if metric == "conversion"
                else "",
                segment["treated"] if metric == "conversion" else "",
                segment["holdout"] if metric == "conversion" else "",
                metric,
                number(estimate["treated_mean"]) if metric != "conversion_per_messaged" else "",
                number(estimate["holdout_mean"]) if metric != "conversion_per_messaged" else "",
                number(estimate["difference"]),
                interval,
                "" if estimate["p_value"] is None else f"{estimate['p_value']:.4f}",
            ]
        )
    return rows


def _outputs(args: argparse.Namespace) -> dict[str, str]:
    stack.use_endpoint(args.endpoint_url)
    if args.outputs_file:
        return stack.outputs_from_file(args.outputs_file)
    return stack.stack_outputs(args.stack_name)


def _deployed(table: str, campaign_id: str) -> StoredCampaign:
    stored = campaigns_table.get_campaign(table, campaign_id)
    if stored is None:
        raise InvalidInputError(f"campaign {campaign_id} is not deployed")
    return stored


def _summary(stored: StoredCampaign) -> dict[str, Any]:
    definition = stored.definition
    return {
        "campaign_id": stored.campaign_id,
        "name": definition.get("name"),
        "state": stored.state.value,
        "state_reason": stored.state_reason,
        "state_changed_at": stored.state_changed_at,
        "channels": list(definition.get("channels", [])),
        "schedule": _schedule_text(definition),
    }


def _schedule_text(stored: Mapping[str, Any]) -> str | None:
    """`cron(...) Asia/Shanghai`; None for a draft (it runs only when fired by hand)."""
    schedule = stored.get("schedule")
    if not schedule:
        return None
    expression = next((f"{kind}({schedule[kind]})" for kind in ("at", "cron", "rate") if schedule.get(kind)), "")
    zone = schedule.get("timezone") or stored.get("default_timezone", "UTC")
    return f"{expression} {zone}".strip()


def _plan_report(plan: Plan) -> dict[str, Any]:
    counters = plan.counters()

    def prefixed(prefix: str) -> dict[str, int]:
        return {name.removeprefix(prefix): n for name, n in counters.items() if name.startswith(prefix)}

    return {
        "run_id": plan.run_id,
        "considered": counters["considered"],
        "audience": counters["audience"],
        "members_by_state": prefixed("state_"),
        "members_by_variant": prefixed("variant_"),
        "sends_by_channel": prefixed("sends_"),
    }


def _write_members(path: Path, rows: list[dict[str, Any]]) -> None:
    # The same columns as the members.csv a real run writes to the data bucket.
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else ["customer_id", "state"])
        writer.writeheader()
        writer.writerows(rows)


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--stack-name",
        default=os.environ.get("CADENCE_STACK_NAME", "cadence-dev"),
        help="the stack whose Outputs name the resources (default: $CADENCE_STACK_NAME, else cadence-dev)",
    )
    common.add_argument("--endpoint-url", default=None, help="e.g. http://127.0.0.1:4566 for the local stack")
    common.add_argument(
        "--outputs-file",
        type=Path,
        default=None,
        metavar="OUTPUTS.json",
        help="read the stack's Outputs from this JSON object instead of CloudFormation (e.g. the local stack's)",
    )
    common.add_argument("--json", action="store_true", help="print one JSON document instead of tables")

    parser = argparse.ArgumentParser(prog="cadence", description="Manage campaigns in a cadence stack.")
    groups = parser.add_subparsers(dest="group", required=True)
    campaign = groups.add_parser("campaign", help="campaign definitions and runs")
    commands = campaign.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    command("validate", _validate, "check a campaign YAML file (no stack needed)").add_argument("file", type=Path)
    command("deploy", _deploy, "validate a campaign YAML file and store it in the stack").add_argument(
        "file", type=Path
    )
    command("list", _list, "every stored campaign: id, name, state, channels, schedule")
    show = command("show", _show, "a stored campaign and its last runs with their counters")
    show.add_argument("campaign_id")
    show.add_argument("--runs", type=int, default=10, help="how many of the latest runs (default 10)")
    preview = command("preview", _preview, "the plan a run would make now, from the stack's data; writes nothing")
    preview.add_argument("file", type=Path)
    preview.add_argument("--members", type=Path, default=None, metavar="OUT.csv", help="write every member row here")
    preview.add_argument("--sample", type=int, default=_SAMPLE_MEMBERS, help="sample members to print (default 5)")
    preview.add_argument(
        "--at", type=_moment, default=None, metavar="ISO_TIME", help="plan as if the run fired then (default: now)"
    )
    command("pause", _move("paused", campaign_control.pause), "stop its firings (schedule disabled); sends held")
    command("resume", _move("resumed", campaign_control.resume), "a paused or failed campaign fires again")
    command("cancel", _move("cancelled", campaign_control.cancel), "end it for good: schedule deleted, sends stopped")
    command("run-now", _run_now, "fire a stored campaign once, now (a one-time EventBridge schedule)")
    command("history", _history, "every stored version of a campaign: when, by whom (IAM principal), what")
    for name in ("pause", "resume", "cancel", "run-now", "history"):
        commands.choices[name].add_argument("campaign_id")
    retry = command("retry-failed", _retry_failed, "queue a run's failed sends again (never those in doubt)")
    retry.add_argument("run_id", help="e.g. winback@2026-11-23T10:00:00Z")
    report = command(
        "report", _report, "a run's uplift against its holdout, written as JSON and HTML under reports/campaigns/"
    )
    report.add_argument("run_id", help="e.g. winback@2026-11-23T10:00:00Z")
    report.add_argument(
        "--window-days", type=int, default=None, help="attribution window (default: the campaign's, else 7)"
    )
    report.add_argument("--open", action="store_true", help="also write the HTML page locally and print its path")
    report.add_argument("--out", type=Path, default=Path("build/reports"), help="where --open writes (build/reports)")
    customer = groups.add_parser("customer", help="customers' data")
    customer_commands = customer.add_subparsers(dest="command", required=True)

    def customer_command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> Any:
        sub = customer_commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.add_argument("customer_id")
        sub.set_defaults(handler=handler)
        return sub

    customer_command("erase", _erase, "erase a customer (right to be forgotten) and print what was removed")
    customer_command(
        "show", _customer_show, "a customer's timeline: sends and their outcomes, replies, intents, consent changes"
    ).add_argument("--days", type=int, default=90, help="how far back sends are looked up (default 90)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "at", None) is None and args.command == "preview":
        args.at = datetime.now(UTC).replace(microsecond=0)
    try:
        result: int = args.handler(args)
    except ValidationError as exc:
        if args.json:
            render.emit_json({"errors": _errors(exc)})
        for error in _errors(exc):
            render.problem(f"invalid: {error['field']}: {error['message']}")
        return EXIT_BAD_INPUT
    except yaml.YAMLError as exc:
        render.problem(f"invalid: {args.file}: not YAML: {' '.join(str(exc).split())}")
        return EXIT_BAD_INPUT
    except OSError as exc:
        render.problem(f"invalid: {exc}")
        return EXIT_BAD_INPUT
    except InvalidInputError as exc:
        render.problem(f"{'refused' if isinstance(exc, IllegalTransitionError) else 'invalid'}: {exc}")
        return EXIT_BAD_INPUT
    except (stack.StackError, CadenceError, BotoCoreError, ClientError) as exc:
        # No credentials or region, an unreachable endpoint, a throttled or refused call: not the input's fault.
        render.problem(f"error: {exc}")
        return EXIT_FAILED
    return result


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    # include_input=False: a rejected value may be a customer's address or a message body.
    return [
        {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"].removeprefix("Value error, ")}
        for error in exc.errors(include_input=False)
    ]
