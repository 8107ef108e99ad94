"""report.html and its charts (ROC, cumulative gains, calibration) for a training run.

Charts are PNG files beside the report and also embedded in it (base64), so the HTML reads on its own
when mailed or attached to a pull request.
"""

import base64
import html
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # no display on CI or in containers

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from model_build.evaluate import roc_points

if TYPE_CHECKING:
    from model_build.train import TrainingRun

CHARTS = {"roc.png": "ROC curve", "gains.png": "Cumulative gains", "calibration.png": "Calibration"}


def render_report(run: "TrainingRun", manifest: Mapping[str, Any]) -> dict[str, bytes]:
    """report.html plus one PNG per chart, by file name."""
    labels = run.latest.labels if run.latest.labels is not None else np.zeros(0)
    charts = {
        "roc.png": _png(_roc_chart(run, labels)),
        "gains.png": _png(_gains_chart(manifest)),
        "calibration.png": _png(_calibration_chart(manifest)),
    }
    return {"report.html": _html(manifest, charts).encode(), **charts}


def _roc_chart(run: "TrainingRun", labels: np.ndarray) -> Figure:
    figure, axes = plt.subplots(figsize=(5, 4.5))
    for name, result in run.candidates.items():
        fpr, tpr = roc_points(labels, result.scores)
        axes.plot(fpr, tpr, label=f"{name} (AUC {result.evaluation.roc_auc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, evaluation snapshot")
    axes.legend(loc="lower right", fontsize="small")
    return figure


def _gains_chart(manifest: Mapping[str, Any]) -> Figure:
    figure, axes = plt.subplots(figsize=(5, 4.5))
    shares = np.arange(0, 11) * 10
    for name, metrics in manifest["candidates"].items():
        axes.plot(shares, [0.0, *[100 * g for g in metrics["cumulative_gains_by_decile"]]], marker="o", label=name)
    axes.plot([0, 100], [0, 100], linestyle="--", color="grey", label="random")
    axes.set(xlabel="% of customers contacted (by score)", ylabel="% of buyers reached", title="Cumulative gains")
    axes.legend(loc="lower right", fontsize="small")
    return figure


def _calibration_chart(manifest: Mapping[str, Any]) -> Figure:
    figure, axes = plt.subplots(figsize=(5, 4.5))
    for name, metrics in manifest["candidates"].items():
        table = metrics["calibration"]
        axes.plot(
            [row["mean_predicted"] for row in table], [row["observed_rate"] for row in table], marker="o", label=name
        )
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.set(xlabel="mean predicted probability", ylabel="observed purchase rate", title="Calibration (10 bins)")
    axes.legend(loc="upper left", fontsize="small")
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    # No timestamps in the PNG metadata, so the same run gives the same bytes.
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _html(manifest: Mapping[str, Any], charts: Mapping[str, bytes]) -> str:
    e = html.escape
    metrics = manifest["metrics"]
    label = manifest["label"]
    candidate_rows = "".join(
        f"<tr><td>{e(name)}{' (chosen)' if name == manifest['estimator']['name'] else ''}</td>"
        f"<td>{m['roc_auc']:.3f}</td><td>{m['pr_auc']:.3f}</td><td>{m['top_decile_lift']:.2f}</td>"
        f"<td>{m['brier']:.4f}</td></tr>"
        for name, m in manifest["candidates"].items()
    )
    decile_rows = "".join(
        f"<tr><td>{index}</td><td>{lift:.2f}</td><td>{100 * gain:.1f}%</td></tr>"
        for index, (lift, gain) in enumerate(
            zip(metrics["lift_by_decile"], metrics["cumulative_gains_by_decile"], strict=True), start=1
        )
    )
    feature_rows = "".join(
        f"<tr><td><code>{e(f['name'])}</code></td><td>{e(f['meaning'])}</td></tr>" for f in manifest["feature_spec"]
    )
    images = "".join(
        f'<figure><img alt="{e(title)}" src="data:image/png;base64,{base64.b64encode(charts[name]).decode()}">'
        f"<figcaption>{e(title)} ({e(name)})</figcaption></figure>"
        for name, title in CHARTS.items()
    )
    parity = manifest["parity"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Propensity model {e(manifest["version"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 70rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
figure {{ display: inline-block; margin: .5rem; }} img {{ max-width: 30rem; }}
</style></head><body>
<h1>Propensity model <code>{e(manifest["version"])}</code></h1>
<p>Created {e(manifest["created_at"])}. Chosen estimator: <b>{e(manifest["estimator"]["name"])}</b>
({e(manifest["selection"])}).</p>
<h2>Label</h2>
<p>{e(label["definition"])}; horizon {label["horizon_days"]} days, history up to {e(label["as_of"])}.
The shipped model was fitted at cutoff {e(label["training_cutoff"])}. Metrics below: fitted at
{e(label["evaluation"]["fitted_at_cutoff"])}, evaluated at {e(label["evaluation"]["evaluated_at_cutoff"])}
({metrics["rows"]} customers, {metrics["positives"]} buyers, base rate {metrics["base_rate"]:.3f}).</p>
<h2>Candidates (out-of-time evaluation)</h2>
<table><tr><th>estimator</th><th>ROC AUC</th><th>PR AUC</th><th>top-decile lift</th><th>Brier</th></tr>
{candidate_rows}</table>
<h2>Lift and cumulative gains by decile (chosen model)</h2>
<table><tr><th>decile</th><th>lift</th><th>cumulative gains</th></tr>{decile_rows}</table>
{images}
<h2>Export</h2>
<p>ONNX sha256 <code>{e(manifest["sha256"])}</code>; sklearn vs onnxruntime max |diff| {parity["max_abs_diff"]:.2e}
on {parity["rows"]} held-out rows (tolerance {parity["tolerance"]:.0e}).
Training data fingerprint <code>{e(manifest["training_data"]["fingerprint"])}</code>.</p>
<h2>Features</h2>
<table><tr><th>name</th><th>meaning</th></tr>{feature_rows}</table>
</body></html>
"""
