"""SNS's opted-out phone numbers (a STOP reply, or opted out by hand) become `consent_sms = false` in the profiles
holding them and suppressions of the numbers, on a schedule.

Only numbers not yet on the suppression list as SMS opt-outs are looked up, so a sync with nothing new costs one
ListPhoneNumbersOptedOut walk and the list's Queries; each new number costs one Query of the profiles' by-phone index.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from cadence.config import SmsOptOutSettings
from cadence.dal import profiles_table, sms, suppression_table
from cadence.observability import logger, metrics
from cadence.suppression import Reason, Suppression, address_hash

SOURCE = "sns:opted_out"


@dataclass(frozen=True)
class SyncResult:
    opted_out: int
    new_numbers: int
    profiles_withdrawn: int


def sync(settings: SmsOptOutSettings, now: datetime | None = None) -> SyncResult:
    """Apply the numbers SNS reports as opted out that we have not applied yet."""
    now = now or datetime.now(UTC)
    numbers = sms.opted_out_numbers()
    known = suppression_table.suppressed_addresses(
        settings.suppression_table, ["sms"], reasons=frozenset({Reason.SMS_OPT_OUT})
    )
    new = [number for number in dict.fromkeys(numbers) if ("sms", address_hash(number)) not in known]
    if not new:
        return SyncResult(len(numbers), 0, 0)
    holders = profiles_table.customers_with_phones(settings.profiles_table, new)
    at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    withdrawn = 0
    for customer_ids in holders.values():
        for customer_id in customer_ids:
            profiles_table.withdraw_consent(settings.profiles_table, customer_id, "sms", at=at, source=SOURCE)
            withdrawn += 1
    # After the profiles: a sync cut off before this line finds the numbers new again next time.
    entries = [
        Suppression.of_address("sms", number, Reason.SMS_OPT_OUT, SOURCE, at=now, customer_id=customer_id)
        for number in new
        for customer_id in holders.get(number, [None])
    ]
    suppression_table.add(settings.suppression_table, entries)
    metrics.add_metric(name="SmsOptOutsApplied", unit=MetricUnit.Count, value=len(new))
    logger.info("sms opt-outs applied", extra={"new_numbers": len(new), "profiles_withdrawn": withdrawn})
    return SyncResult(len(numbers), len(new), withdrawn)
