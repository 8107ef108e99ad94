"""A campaign run's report as one self-contained HTML page: tables and inline SVG charts, no script, no CDN."""

from html import escape
from typing import Any

_WIDTH, _ROW, _LABEL = 640, 26, 150
_TREATED, _HOLDOUT, _EFFECT = "#2b6cb0", "#a0aec0", "#2f855a"


def _pct(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value * 100:.{digits}f} %"


def _num(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _p(value: float | None) -> str:
    return "" if value is None else ("< 0.001" if value < 0.001 else f"{value:.3f}")


def _rates_chart(segments: list[dict[str, Any]]) -> str:
    """Conversion rate, treated and holdout bars side by side per segment, with 0 at the left edge."""
    rates = [s["conversion"][k] or 0.0 for s in segments for k in ("treated_mean", "holdout_mean")]
    top = max([*rates, 0.01])
    scale = (_WIDTH - _LABEL - 70) / top
    height = len(segments) * 2 * _ROW + 30
    parts = [f'<svg viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" role="img">']
    y = 10
    for segment in segments:
        parts.append(f'<text x="0" y="{y + _ROW}" font-size="13">{escape(str(segment["segment"]))}</text>')
        for key, colour, label in (("treated_mean", _TREATED, "treated"), ("holdout_mean", _HOLDOUT, "holdout")):
            value = segment["conversion"][key] or 0.0
            parts.append(
                f'<rect x="{_LABEL}" y="{y + 3}" width="{value * scale:.1f}" height="{_ROW - 6}" fill="{colour}">'
                f"<title>{label} {_pct(value)}</title></rect>"
                f'<text x="{_LABEL + value * scale + 4:.1f}" y="{y + _ROW - 8}" font-size="11">'
                f"{label} {_pct(value)}</text>"
            )
            y += _ROW
    parts.append("</svg>")
    return "".join(parts)


def _forest(segments: list[dict[str, Any]], metric: str, fmt: Any) -> str:
    """Each segment's difference as a dot with its 95 % interval as a line; the dashed line is no effect."""
    values = [v for s in segments for v in (s[metric]["low"], s[metric]["high"]) if v is not None]
    low, high = min([*values, 0.0]), max([*values, 0.0])
    span = (high - low) or 1.0
    inner = _WIDTH - _LABEL - 20

    def x(value: float) -> float:
        return float(_LABEL + (value - low) / span * inner)

    height = len(segments) * _ROW + 40
    parts = [
        f'<svg viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" role="img">',
        f'<line x1="{x(0):.1f}" y1="5" x2="{x(0):.1f}" y2="{height - 25}" stroke="#718096" stroke-dasharray="4 3"/>',
        f'<text x="{x(0):.1f}" y="{height - 8}" font-size="11" text-anchor="middle">0</text>',
        f'<text x="{_LABEL}" y="{height - 8}" font-size="11">{escape(fmt(low))}</text>',
        f'<text x="{_WIDTH - 20}" y="{height - 8}" font-size="11" text-anchor="end">{escape(fmt(high))}</text>',
    ]
    for index, segment in enumerate(segments):
        y = 10 + index * _ROW + _ROW / 2
        estimate = segment[metric]
        parts.append(f'<text x="0" y="{y + 4:.1f}" font-size="13">{escape(str(segment["segment"]))}</text>')
        if estimate["difference"] is None:
            parts.append(f'<text x="{_LABEL}" y="{y + 4:.1f}" font-size="11">too few members</text>')
            continue
        title = f"{fmt(estimate['difference'])} [{fmt(estimate['low'])}, {fmt(estimate['high'])}]"
        parts.append(
            f'<line x1="{x(estimate["low"]):.1f}" y1="{y:.1f}" x2="{x(estimate["high"]):.1f}" y2="{y:.1f}" '
            f'stroke="{_EFFECT}" stroke-width="2"/>'
            f'<circle cx="{x(estimate["difference"]):.1f}" cy="{y:.1f}" r="4" fill="{_EFFECT}">'
            f"<title>{escape(title)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(segments: list[dict[str, Any]]) -> str:
    head = (
        "<tr><th>segment</th><th>treated</th><th>holdout</th><th>conversion treated</th><th>conversion holdout</th>"
        "<th>difference [95 % CI]</th><th>p</th><th>revenue / customer difference [95 % CI]</th><th>p</th>"
        "<th>reached</th><th>per messaged: conversion [95 % CI]</th></tr>"
    )
    rows = []
    for s in segments:
        c, r, m = s["conversion"], s["revenue_per_customer"], s["conversion_per_messaged"]
        note = " *" if s["approximate"] else ""
        rows.append(
            f"<tr><td>{escape(str(s['segment']))}{note}</td><td>{s['treated']:,}</td><td>{s['holdout']:,}</td>"
            f"<td>{_pct(c['treated_mean'])}</td><td>{_pct(c['holdout_mean'])}</td>"
            f"<td>{_pct(c['difference'])} [{_pct(c['low'])}, {_pct(c['high'])}]</td><td>{_p(c['p_value'])}</td>"
            f"<td>{_num(r['difference'])} [{_num(r['low'])}, {_num(r['high'])}]</td><td>{_p(r['p_value'])}</td>"
            f"<td>{_pct(s['reached_share'], 0)}</td>"
            f"<td>{_pct(m['difference'])} [{_pct(m['low'])}, {_pct(m['high'])}]</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def render(report: dict[str, Any]) -> str:
    """The report document (cadence.campaign_report.compute) as HTML."""
    overall, window, attribution = report["overall"], report["window"], report["attribution"]
    conversion = overall["conversion"]
    state = "closed" if window["closed"] else "still open: orders to come are missing from both groups alike"
    segments = [overall, *report["by_variant"]] if len(report["by_variant"]) > 1 else [overall]
    deciles = report["by_decile"]
    title = f"Campaign run {report['run_id']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1a202c; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 14px; }}
th, td {{ border: 1px solid #cbd5e0; padding: 4px 8px; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.headline {{ font-size: 1.2rem; }} .muted {{ color: #4a5568; font-size: 13px; }}
</style></head><body>
<h1>{escape(title)}</h1>
<p class="muted">Attribution window {window["days"]} days, {escape(window["start"])} to {escape(window["end"])}
({escape(state)}). Generated {escape(report["generated_at"])}.</p>
<p class="headline">Conversion {_pct(conversion["treated_mean"])} treated against {_pct(conversion["holdout_mean"])}
in the holdout: <strong>{_pct(conversion["difference"])}</strong> (95 % CI {_pct(conversion["low"])} to
{_pct(conversion["high"])}, p {_p(conversion["p_value"])}). Per messaged customer:
<strong>{_pct(overall["conversion_per_messaged"]["difference"])}</strong>
({_pct(overall["conversion_per_messaged"]["low"])} to {_pct(overall["conversion_per_messaged"]["high"])});
{_pct(overall["reached_share"], 0)} of the treated were messaged.</p>
<p>Orders attributed to the run: {attribution["orders"]:,} ({attribution["orders_by_coupon"]:,} by coupon code,
{attribution["orders_by_window"]:,} in the window by last touch), revenue {_num(attribution["revenue"])}, from
{attribution["customers"]:,} customers; {attribution["orders_to_later_touch"]:,} went to a later campaign and
{attribution["orders_with_other_code"]:,} carried another code.</p>
<h2>Conversion rate</h2>{_rates_chart(segments)}
<h2>Treated minus holdout</h2>{_table(segments)}
<h2>By score decile (at the time of the run)</h2>
<h3>Conversion difference</h3>{_forest(deciles, "conversion", _pct) if deciles else "<p>No deciles recorded.</p>"}
<h3>Revenue per customer difference</h3>{_forest(deciles, "revenue_per_customer", _num) if deciles else ""}
{_table(deciles) if deciles else ""}
<p class="muted">* fewer than 30 converters in a group: the interval is approximate.</p>
<p class="muted">Members by state: {escape(", ".join(f"{k} {v:,}" for k, v in report["members_by_state"].items()))}</p>
<p class="muted">{escape(report["method"])}</p>
</body></html>
"""
