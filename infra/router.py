"""Routes the stack's event sources to the function workers, as Lambda's services would on AWS.

- S3 -> function: moto's own bucket notification (the template's NotificationConfiguration, applied by
  ``infra.sam_deploy``) calls ``invoke_async`` through ``infra.moto_patches``. That is the fastest of the ways
  measured (in-process: 6-10 ms from PUT to handler, against 17-43 ms through an SQS hop or ~40 ms polling) and it
  reuses moto's matching of the template's event names and prefix/suffix filters.
- Asynchronous invocations (S3, schedules, ``InvocationType=Event``) follow the function's EventInvokeConfig as
  deployed: retries (default 2) then the on-failure (or on-success) destination record, in AWS's shape.
- SQS -> function: one poller per event source mapping, with its batch size and ``ReportBatchItemFailures``
  (only failed messages stay; the rest are deleted; moto's RedrivePolicy moves repeat failures to the DLQ).
- EventBridge Scheduler: moto stores schedules but never fires them, so a loop lists every group's schedules about
  once a second (the template's and any created later through the API) and fires them when due.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from cadence.campaigns import schedule as schedules
from infra.moto_patches import routed_elsewhere, unqualified
from infra.runtime import FunctionWorker, InvocationResult

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from infra.clients import Clients
    from infra.runtime import FunctionSpec

log = logging.getLogger(__name__)

DEFAULT_ASYNC_RETRIES: Final = 2  # Lambda's default MaximumRetryAttempts
DEFAULT_MAX_EVENT_AGE_S: Final = 21600
SCHEDULER_POLL_S: Final = 1.0
_SQS_WAIT_S: Final = 1  # long poll: returns at once when a message arrives, bounds how long a stop waits
_ERROR_BACKOFF_S: Final = 1.0


@dataclass(frozen=True)
class InvocationRecord:
    """One invocation of a function, as the router saw it."""

    function: str  # logical id
    request_id: str
    trigger: str  # "s3", "sqs", "schedule", "api", "destination", "direct"
    attempt: int
    started_at: float
    duration_ms: float
    error_type: str | None = None
    error_message: str | None = None
    api_calls: dict[str, int] = field(default_factory=dict)  # by "service.Operation"

    @property
    def ok(self) -> bool:
        """Whether the invocation returned without a function error."""
        return self.error_type is None


@dataclass(frozen=True)
class SqsSource:
    """An SQS event source mapping as deployed."""

    function: str  # logical id
    queue_url: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass(order=True)
class _AsyncJob:
    due: float
    sequence: int
    request_id: str = field(compare=False)
    event: Any = field(compare=False)
    trigger: str = field(compare=False)
    enqueued_at: float = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Router:
    """Runs the stack's functions in workers and feeds them from S3, SQS, schedules and the Invoke API."""

    def __init__(
        self,
        clients: Clients,
        functions: dict[str, FunctionSpec],
        base_path: list[str],
        *,
        retry_delays: Sequence[float] = (1.0, 2.0),
        console: Callable[[str], None] | None = None,
    ) -> None:
        self._clients = clients
        self._region = clients.region
        self._specs = functions
        self._workers = {logical_id: FunctionWorker(spec, base_path, console) for logical_id, spec in functions.items()}
        self._by_arn = {unqualified(spec.function_arn): logical_id for logical_id, spec in functions.items()}
        # AWS waits about 1 and 2 minutes between async retries; seconds keep failures quick to see locally.
        self._retry_delays = tuple(retry_delays) or (0.0,)
        self._stopping = threading.Event()
        self._activity = threading.Condition()
        self._busy = 0  # queued or running invocations
        self._generation = 0  # bumped whenever an invocation is queued, starts or ends
        self._records: dict[str, list[InvocationRecord]] = {logical_id: [] for logical_id in functions}
        self._jobs: dict[str, list[_AsyncJob]] = {logical_id: [] for logical_id in functions}
        self._sequence = itertools.count()
        self._threads: list[threading.Thread] = []
        self._sqs_sources: list[SqsSource] = []
        self.scheduler = _Scheduler(self, clients)

    # ---------- lifecycle ----------

    def start(self, sqs_sources: Sequence[SqsSource]) -> None:
        """Start the workers (their cold starts run in the background), the pollers and the scheduler."""
        for worker in self._workers.values():
            worker.start()
        for logical_id in self._workers:
            self._thread(f"async-{logical_id}", self._async_loop, logical_id)
        self._sqs_sources = list(sqs_sources)
        for source in self._sqs_sources:
            self._thread(f"sqs-{source.function}", self._poll_loop, source)
        self._thread("scheduler", self.scheduler.run, self._stopping)

    def stop(self) -> None:
        """Stop polling and firing, then the workers (a running invocation is cut short)."""
        self._stopping.set()
        with self._activity:
            self._activity.notify_all()
        stoppers = [threading.Thread(target=worker.stop, name=f"stop-{w}") for w, worker in self._workers.items()]
        for stopper in stoppers:  # in parallel: each may wait a few seconds for its worker
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for thread in self._threads:
            thread.join(5.0)
            if thread.is_alive():
                log.warning("thread %s did not stop", thread.name)

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ---------- the Lambda side (LambdaRoute) ----------

    def owns(self, function_arn: str) -> bool:
        """Whether this router runs the function."""
        return unqualified(function_arn) in self._by_arn

    def logical_id(self, function_arn: str) -> str:
        """The logical id of a routed function."""
        return self._by_arn[unqualified(function_arn)]

    def invoke_async(self, function_arn: str, event: Any, trigger: str) -> str:
        """Queue an event for the function (InvocationType=Event); returns the request id."""
        logical_id = self.logical_id(function_arn)
        request_id = str(uuid.uuid4())
        now = time.time()
        job = _AsyncJob(now, next(self._sequence), request_id, event, trigger, now)
        with self._activity:
            heapq.heappush(self._jobs[logical_id], job)
            self._busy += 1
            self._generation += 1
            self._activity.notify_all()
        return request_id

    def invoke_sync(self, function_arn: str, event: Any, trigger: str) -> InvocationResult:
        """Invoke and wait (InvocationType=RequestResponse)."""
        return self.invoke(self.logical_id(function_arn), event, trigger)

    def invoke(self, logical_id: str, event: Any, trigger: str = "direct") -> InvocationResult:
        """Invoke a function by logical id and wait for its result."""
        with self._activity:
            self._busy += 1
            self._generation += 1
        try:
            return self._run(logical_id, event, str(uuid.uuid4()), trigger, attempt=1)
        finally:
            self._done()

    def invocations(self, logical_id: str) -> list[InvocationRecord]:
        """Every invocation of one function so far, oldest first."""
        with self._activity:
            return list(self._records[logical_id])

    def _run(self, logical_id: str, event: Any, request_id: str, trigger: str, attempt: int) -> InvocationResult:
        result = self._workers[logical_id].invoke(json.dumps(event), request_id)
        error = result.error or {}
        record = InvocationRecord(
            logical_id,
            request_id,
            trigger,
            attempt,
            result.started_at,
            result.duration_ms,
            error.get("errorType") if result.error is not None else None,
            error.get("errorMessage") if result.error is not None else None,
            result.api_calls,
        )
        with self._activity:
            self._records[logical_id].append(record)
        if result.error is not None:
            log.warning(
                "%s %s (%s, attempt %d) failed: %s: %s",
                logical_id,
                request_id,
                trigger,
                attempt,
                record.error_type,
                record.error_message,
            )
        return result

    def _done(self) -> None:
        with self._activity:
            self._busy -= 1
            self._generation += 1
            self._activity.notify_all()

    # ---------- asynchronous invocations ----------

    def _async_loop(self, logical_id: str) -> None:
        jobs = self._jobs[logical_id]
        while True:
            with self._activity:
                while not self._stopping.is_set() and (not jobs or jobs[0].due > time.time()):
                    self._activity.wait(None if not jobs else max(0.0, jobs[0].due - time.time()))
                if self._stopping.is_set():
                    return
                job = heapq.heappop(jobs)
            try:
                self._attempt(logical_id, job)
            except Exception:
                log.exception("async invocation %s of %s failed in the router", job.request_id, logical_id)
                self._done()

    def _attempt(self, logical_id: str, job: _AsyncJob) -> None:
        result = self._run(logical_id, job.event, job.request_id, job.trigger, job.attempt)
        if self._stopping.is_set():
            self._done()
            return
        config = self._event_invoke_config(logical_id)
        max_retries = int(config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
        max_age = int(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_S))
        destinations = config.get("DestinationConfig", {})
        if result.ok:
            self._send_to_destination(logical_id, job, result, "Success", destinations.get("OnSuccess"))
            self._done()
            return
        if job.attempt <= max_retries:
            delay = self._retry_delays[min(job.attempt - 1, len(self._retry_delays) - 1)]
            if time.time() + delay - job.enqueued_at <= max_age:
                job.attempt += 1
                job.due = time.time() + delay
                job.sequence = next(self._sequence)
                with self._activity:
                    heapq.heappush(self._jobs[logical_id], job)
                    self._generation += 1
                    self._activity.notify_all()
                return
            condition = "EventAgeExceeded"
        else:
            condition = "RetriesExhausted"
        log.warning("%s %s: %s after %d attempt(s)", logical_id, job.request_id, condition, job.attempt)
        self._send_to_destination(logical_id, job, result, condition, destinations.get("OnFailure"))
        self._done()

    def _event_invoke_config(self, logical_id: str) -> dict[str, Any]:
        try:
            return dict(
                self._clients("lambda").get_function_event_invoke_config(
                    FunctionName=self._specs[logical_id].function_name
                )
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return {}
            raise

    def _send_to_destination(
        self,
        logical_id: str,
        job: _AsyncJob,
        result: InvocationResult,
        condition: str,
        destination: dict[str, Any] | None,
    ) -> None:
        if not destination or not destination.get("Destination"):
            return
        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if not result.ok:
            response_context["functionError"] = "Unhandled"
        record = {
            "version": "1.0",
            "timestamp": _iso_millis(datetime.now(UTC)),
            "requestContext": {
                "requestId": job.request_id,
                "functionArn": f"{self._specs[logical_id].function_arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": job.attempt,
            },
            "requestPayload": job.event,
            "responseContext": response_context,
            "responsePayload": result.payload,
        }
        arn = destination["Destination"]
        self.deliver(arn, json.dumps(record), f"{logical_id} {condition} destination")

    def deliver(self, arn: str, body: str, what: str, sqs_parameters: dict[str, Any] | None = None) -> bool:
        """Send ``body`` to an SQS queue, SNS topic, routed function or event bus by ARN; False if it could not."""
        service = arn.split(":")[2]
        try:
            if service == "sqs":
                request: dict[str, Any] = {"QueueUrl": self.queue_url(arn), "MessageBody": body}
                if sqs_parameters and sqs_parameters.get("MessageGroupId"):
                    request["MessageGroupId"] = sqs_parameters["MessageGroupId"]
                self._clients("sqs").send_message(**request)
            elif service == "sns":
                self._clients("sns").publish(TopicArn=arn, Message=body)
            elif service == "lambda" and self.owns(arn):
                self.invoke_async(arn, json.loads(body), "destination")
            elif service == "events":
                entry = {"Source": "lambda", "DetailType": what, "Detail": body, "EventBusName": arn}
                self._clients("events").put_events(Entries=[entry])
            else:
                log.warning("%s: %s is not a target the local stack can reach", what, arn)
                return False
        except (ClientError, BotoCoreError) as exc:
            log.warning("%s: sending to %s failed: %s", what, arn, exc)
            return False
        return True

    def queue_url(self, queue_arn: str) -> str:
        """The URL of a queue given its ARN."""
        _, _, _, _, account, name = queue_arn.split(":")
        response = self._clients("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        return str(response["QueueUrl"])

    # ---------- SQS event source mappings ----------

    def _poll_loop(self, source: SqsSource) -> None:
        sqs = self._clients.new("sqs")  # its own connection pool: the long poll holds a connection
        last_error = ""
        while not self._stopping.is_set():
            try:
                messages = self._receive(sqs, source)
                last_error = ""
            except (ClientError, BotoCoreError) as exc:
                if str(exc) != last_error:  # once per distinct error, not once a second
                    log.warning("polling %s for %s failed: %s", source.queue_url, source.function, exc)
                    last_error = str(exc)
                self._stopping.wait(_ERROR_BACKOFF_S)
                continue
            if messages and not self._stopping.is_set():
                try:
                    self._deliver_batch(sqs, source, messages)
                except Exception:  # the messages come back after their visibility timeout; keep polling
                    log.exception(
                        "delivering a batch from %s to %s failed in the router", source.queue_url, source.function
                    )

    def _receive(self, sqs: Any, source: SqsSource) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        wait = _SQS_WAIT_S
        while len(messages) < source.batch_size and not self._stopping.is_set():
            response = sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(10, source.batch_size - len(messages)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            if not received:
                break
            messages.extend(received)
            wait = 0  # fill the batch with what is already there, as Lambda's poller does without a window
        return messages

    def _deliver_batch(self, sqs: Any, source: SqsSource, messages: list[dict[str, Any]]) -> None:
        records = [sqs_record(message, source.queue_arn, self._region) for message in messages]
        with self._activity:
            self._busy += 1
            self._generation += 1
        try:
            result = self._run(source.function, {"Records": records}, str(uuid.uuid4()), "sqs", attempt=1)
            if self._stopping.is_set():
                return
            done = settled_messages(records, result, report_batch_item_failures=source.report_batch_item_failures)
            for start in range(0, len(done), 10):
                entries = [
                    {"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(done[start : start + 10])
                ]
                response = sqs.delete_message_batch(QueueUrl=source.queue_url, Entries=entries)
                for failure in response.get("Failed", []):
                    log.warning("deleting a message from %s failed: %s", source.queue_url, failure.get("Message"))
        except (ClientError, BotoCoreError) as exc:
            log.warning("settling a batch of %s failed: %s", source.queue_url, exc)
        finally:
            self._done()

    # ---------- idleness ----------

    def wait_idle(self, timeout: float) -> None:
        """Block until nothing is queued or running, no schedule is due and every routed queue is empty."""
        deadline = time.monotonic() + timeout
        first = True
        while True:
            self.scheduler.tick(force_sync=first)  # a due schedule is pending work, even one created just now
            first = False
            with self._activity:
                generation, busy = self._generation, self._busy
            if busy == 0:
                depth = self._queue_depths()
                with self._activity:
                    settled = self._busy == 0 and self._generation == generation
                if settled and not any(depth.values()):
                    return
            else:
                depth = {}
            if time.monotonic() > deadline:
                raise TimeoutError(f"local stack not idle after {timeout:.0f}s: {busy} invocation(s), queues {depth}")
            with self._activity:
                self._activity.wait(0.05)

    def _queue_depths(self) -> dict[str, int]:
        depths = {}
        names = (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
        for source in self._sqs_sources:
            attributes = self._clients("sqs").get_queue_attributes(
                QueueUrl=source.queue_url, AttributeNames=list(names)
            )
            depths[source.queue_url.rsplit("/", 1)[-1]] = sum(int(attributes["Attributes"].get(n, 0)) for n in names)
        return depths


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of the event Lambda's SQS poller sends, from a ReceiveMessage result."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),  # ApproximateReceiveCount, SentTimestamp, SenderId ...
        "messageAttributes": {
            name: _message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute in Lambda's event shape (camelCase keys, binary values base64-encoded)."""
    converted: dict[str, Any] = {}
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    converted["stringListValues"] = list(value.get("StringListValues", []))
    converted["binaryListValues"] = [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])]
    converted["dataType"] = value["DataType"]
    return converted


def settled_messages(
    records: list[dict[str, Any]], result: InvocationResult, *, report_batch_item_failures: bool
) -> list[str]:
    """Receipt handles of the messages Lambda would delete after this invocation.

    A function error keeps the whole batch. With ReportBatchItemFailures, a null/empty response or an empty
    ``batchItemFailures`` settles everything; listed ids stay; a malformed response or an unknown or empty
    ``itemIdentifier`` keeps the whole batch (AWS's rules).
    """
    everything = [record["receiptHandle"] for record in records]
    if not result.ok:
        return []
    failed = _reported_failures(result.payload) if report_batch_item_failures else set()
    if failed is None or not failed <= {record["messageId"] for record in records}:
        return []
    return (
        [record["receiptHandle"] for record in records if record["messageId"] not in failed] if failed else everything
    )


def _reported_failures(payload: Any) -> set[str] | None:
    """The message ids a partial-batch response lists; None for a response that fails the whole batch."""
    if payload is None or payload in ({}, ""):
        return set()
    if not isinstance(payload, dict):
        return None
    identifiers = [
        failure.get("itemIdentifier") if isinstance(failure, dict) else None
        for failure in payload.get("batchItemFailures") or []
    ]
    if not all(isinstance(identifier, str) and identifier for identifier in identifiers):
        return None
    return set(identifiers)


# ---------- EventBridge Scheduler ----------


@dataclass
class _Tracked:
    arn: str
    name: str
    group: str
    modified: Any
    detail: dict[str, Any]
    expression: schedules.Expression | None
    next_due: datetime | None
    done: bool = False


class _Scheduler:
    """Fires EventBridge Scheduler schedules, which moto stores but never fires."""

    def __init__(self, router: Router, clients: Clients) -> None:
        self._router = router
        self._clients = clients
        self._lock = threading.RLock()
        self._tracked: dict[str, _Tracked] = {}
        self._last_sync = 0.0
        self._warned: set[str] = set()
        self.fired: list[tuple[str, datetime]] = []  # (schedule ARN, scheduled time), for tests and the demo

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                self.tick()
            except (ClientError, BotoCoreError) as exc:
                self._warn_once(f"scheduler: {exc}")
            except Exception:  # a daemon loop that died would stop every schedule without a word
                log.exception("scheduler tick failed")
            stopping.wait(self._sleep_time())

    def tick(self, *, force_sync: bool = False) -> None:
        """List the schedules if half a poll interval has passed (or when forced), then fire whatever is due."""
        with self._lock:
            now = datetime.now(UTC)
            if force_sync or time.monotonic() - self._last_sync >= SCHEDULER_POLL_S / 2:
                self._sync(now)
                self._last_sync = time.monotonic()
            for tracked in list(self._tracked.values()):
                if tracked.next_due is not None and not tracked.done and tracked.next_due <= now:
                    self._fire(tracked, now)

    def _sleep_time(self) -> float:
        with self._lock:
            dues = [t.next_due for t in self._tracked.values() if t.next_due is not None and not t.done]
        if not dues:
            return SCHEDULER_POLL_S
        return max(0.01, min(SCHEDULER_POLL_S, (min(dues) - datetime.now(UTC)).total_seconds()))

    def _sync(self, now: datetime) -> None:
        scheduler = self._clients("scheduler")
        seen = set()
        for page in scheduler.get_paginator("list_schedules").paginate():
            for summary in page["Schedules"]:
                arn = summary["Arn"]
                if routed_elsewhere(summary.get("Target", {}).get("Arn", ""), self._router):
                    continue  # another local stack in this process (same account and region) fires it
                seen.add(arn)
                known = self._tracked.get(arn)
                if known is not None and known.modified == summary.get("LastModificationDate"):
                    continue
                try:
                    detail = scheduler.get_schedule(Name=summary["Name"], GroupName=summary["GroupName"])
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                        raise
                    seen.discard(arn)  # deleted between the listing and now
                    continue
                self._tracked[arn] = self._track(detail, now)
        for arn in set(self._tracked) - seen:
            del self._tracked[arn]

    def _track(self, detail: dict[str, Any], now: datetime) -> _Tracked:
        tracked = _Tracked(
            arn=detail["Arn"],
            name=detail["Name"],
            group=detail.get("GroupName", "default"),
            modified=detail.get("LastModificationDate"),
            detail=detail,
            expression=None,
            next_due=None,
        )
        if detail.get("State", "ENABLED") != "ENABLED":
            return tracked
        try:
            tracked.expression = schedules.parse(detail["ScheduleExpression"])
        except schedules.ScheduleExpressionError as exc:
            self._warn_once(f"schedule {tracked.name}: {exc}")
            return tracked
        timezone = detail.get("ScheduleExpressionTimezone") or "UTC"
        start, end = _utc(detail.get("StartDate")), _utc(detail.get("EndDate"))
        if isinstance(tracked.expression, schedules.AtExpression):
            # A one-time schedule fires once even if its time has passed when it is first seen: the demo and
            # tools create at() schedules for "now".
            tracked.next_due = schedules.at_time(tracked.expression, timezone)
            return tracked
        # Recurring schedules fire only when due from now on, never to catch up at startup.
        after = max(now, start - timedelta(microseconds=1)) if start else now
        anchor = start or _utc(detail.get("CreationDate")) or now
        tracked.next_due = schedules.next_fire_time(tracked.expression, after, timezone, anchor=anchor)
        if tracked.next_due is None or (end is not None and tracked.next_due > end):
            tracked.done = True
        return tracked

    def _fire(self, tracked: _Tracked, now: datetime) -> None:
        scheduled = tracked.next_due
        assert scheduled is not None  # noqa: S101 - callers check
        self.fired.append((tracked.arn, scheduled))
        target = tracked.detail["Target"]
        execution_id = str(uuid.uuid4())
        payload = substitute_context(target.get("Input"), scheduled, tracked.arn, execution_id, attempt=1)
        log.info("schedule %s fires (scheduled %s)", tracked.name, _iso_seconds(scheduled))
        if not self._invoke_target(tracked, target, payload):
            self._dead_letter(tracked, target, payload, execution_id)
        detail = tracked.detail
        if isinstance(tracked.expression, schedules.AtExpression):
            tracked.done = True
        else:
            timezone = detail.get("ScheduleExpressionTimezone") or "UTC"
            assert tracked.expression is not None  # noqa: S101 - only parsed schedules get a due time
            tracked.next_due = schedules.next_fire_time(tracked.expression, now, timezone, anchor=scheduled)
            end = _utc(detail.get("EndDate"))
            tracked.done = tracked.next_due is None or (end is not None and tracked.next_due > end)
        if tracked.done and detail.get("ActionAfterCompletion") == "DELETE":
            with contextlib.suppress(ClientError):
                self._clients("scheduler").delete_schedule(Name=tracked.name, GroupName=tracked.group)
            self._tracked.pop(tracked.arn, None)
            log.info("schedule %s completed and was deleted (ActionAfterCompletion DELETE)", tracked.name)

    def _invoke_target(self, tracked: _Tracked, target: dict[str, Any], payload: str | None) -> bool:
        arn = target["Arn"]
        if arn.split(":")[2] == "lambda":
            if not self._router.owns(arn):
                self._warn_once(f"schedule {tracked.name}: {arn} is not a function of this stack")
                return False
            try:
                event: Any = json.loads(payload) if payload else {}
            except json.JSONDecodeError:
                event = payload
            self._router.invoke_async(arn, event, "schedule")
            return True
        return self._router.deliver(arn, payload or "{}", f"schedule {tracked.name}", target.get("SqsParameters"))

    def _dead_letter(self, tracked: _Tracked, target: dict[str, Any], payload: str | None, execution_id: str) -> None:
        # Scheduler invokes Lambda asynchronously, so its RetryPolicy and DLQ only see failures to invoke at all
        # (here: a target this stack does not run); the function's own errors follow its EventInvokeConfig.
        dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
        if not dead_letter:
            return
        attributes = {
            "ERROR_CODE": "ResourceNotFoundException",
            "ERROR_MESSAGE": f"target {target['Arn']} could not be invoked locally",
            "EXECUTION_ID": execution_id,
            "RETRY_ATTEMPTS": "0",
            "SCHEDULE_ARN": tracked.arn,
            "TARGET_ARN": target["Arn"],
        }
        with contextlib.suppress(ClientError, BotoCoreError):
            self._clients("sqs").send_message(
                QueueUrl=self._router.queue_url(dead_letter),
                MessageBody=payload or "{}",
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)


def substitute_context(
    text: str | None, scheduled: datetime, schedule_arn: str, execution_id: str, attempt: int
) -> str | None:
    """EventBridge Scheduler's context attributes in a target's Input."""
    if text is None:
        return None
    values = {
        "<aws.scheduler.scheduled-time>": _iso_seconds(scheduled),
        "<aws.scheduler.schedule-arn>": schedule_arn,
        "<aws.scheduler.execution-id>": execution_id,
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _iso_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
