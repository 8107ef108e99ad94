"""The one-click unsubscribe endpoint (RFC 8058) behind every email's List-Unsubscribe header.

- `POST <url>?token=...` with the form body `List-Unsubscribe=One-Click` (what a mail provider sends when the
  reader presses its unsubscribe button, and what the confirmation page's button sends) withdraws consent;
- `GET <url>?token=...` (the link in the message) only shows a page with that button: link scanners and previews
  follow GETs, and must not unsubscribe anyone.

A token that is forged, altered or expired is refused (400) and changes nothing. A valid one sets the channel's
consent to no in the profile (with its time and source) and puts the address on the suppression list, so no
campaign sends to it again, whatever a later file says of consent.
"""

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

from aws_lambda_powertools.metrics import MetricUnit

from cadence import unsubscribe
from cadence.config import UnsubscribeSettings
from cadence.dal import profiles_table, secrets, suppression_table
from cadence.observability import logger, metrics
from cadence.suppression import Reason, Suppression

ONE_CLICK = ("List-Unsubscribe", "One-Click")


@dataclass(frozen=True)
class Page:
    status: int
    body: str


def _page(status: int, title: str, text: str, form: str = "") -> Page:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><meta name='robots' content='noindex'>"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p>{form}</body></html>"
    )
    return Page(status, body)


_REFUSED = ("Link not valid", "This unsubscribe link is not valid or has expired. Nothing was changed.")


def handle(
    method: str, token: str | None, form: str, settings: UnsubscribeSettings, now: datetime | None = None
) -> Page:
    """Answer one request to the endpoint (`form` is the POST body, form-encoded)."""
    now = now or datetime.now(UTC)
    key = secrets.signing_key(settings.unsubscribe_secret_arn)
    try:
        claims = unsubscribe.verify(key, token or "", now)
    except unsubscribe.InvalidTokenError:
        metrics.add_metric(name="UnsubscribeRefused", unit=MetricUnit.Count, value=1)
        return _page(400, *_REFUSED)
    if claims.channel not in {"email", "sms"}:
        return _page(400, *_REFUSED)
    if method == "GET":
        # The page posts back to the same URL (relative), with the same token.
        action = html.escape("?" + urlencode({"token": token or ""}), quote=True)
        form_html = (
            f"<form method='post' action='{action}'>"
            "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
            "<button type='submit'>Unsubscribe</button></form>"
        )
        return _page(200, "Unsubscribe", "Press the button to stop these messages.", form_html)
    if method != "POST":
        return _page(405, "Not allowed", "Use the link in the message.")
    fields = parse_qs(form, keep_blank_values=True)
    if fields.get(ONE_CLICK[0]) != [ONE_CLICK[1]]:
        return _page(400, "Not understood", "This request did not ask to unsubscribe. Nothing was changed.")
    _withdraw(claims, settings, now)
    return _page(200, "Unsubscribed", "You will not receive these messages any more.")


def _withdraw(claims: unsubscribe.UnsubscribeClaims, settings: UnsubscribeSettings, now: datetime) -> None:
    source = f"unsubscribe:{claims.campaign_id}/{claims.run_id}"
    at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    address = profiles_table.withdraw_consent(
        settings.profiles_table, claims.customer_id, claims.channel, at=at, source=source
    )
    log_ids = {"customer_id": claims.customer_id, "channel": claims.channel, "run_id": claims.run_id}
    if address is None:
        # Erased, or never imported: nothing to withdraw, and nothing of theirs will be sent.
        logger.info("unsubscribe for an unknown customer", extra=log_ids)
        return
    if address:
        suppression_table.add(
            settings.suppression_table,
            [
                Suppression.of_address(
                    claims.channel,  # type: ignore[arg-type]
                    address,
                    Reason.UNSUBSCRIBE,
                    source,
                    at=now,
                    customer_id=claims.customer_id,
                )
            ],
        )
    logger.info("unsubscribed", extra=log_ids)
    metrics.add_metric(name="Unsubscribed", unit=MetricUnit.Count, value=1)
