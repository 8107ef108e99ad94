"""DynamoDB's batch APIs with their partial failures handled: unprocessed keys and items retried with backoff.

BatchGetItem takes at most 100 keys a call across all the tables it names; BatchWriteItem 25 requests.
Both report throttled work in the response (UnprocessedKeys / UnprocessedItems) instead of failing, so every
call here loops until nothing is left, sleeping a little longer each round, and gives up with TransientError.
A parallel Scan (`scan_segments`) reads a whole table with several segments at once.
"""

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _quoted  # json's own (C) string encoder
from typing import Any, cast

import numpy as np
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from cadence import collector
from cadence.dal import clients, dynamodb_wire
from cadence.dal.items import to_attribute
from cadence.errors import TransientError

GET_LIMIT = 100
WRITE_LIMIT = 25
_MAX_ROUNDS = 10
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05 * 2**attempt, 2.0))


# Integers DynamoDB's 38 digits hold exactly; TypeSerializer writes them as str(int) too.
_INT_LIMIT = 10**38


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """Low-level attribute values, as boto3's TypeSerializer makes them.

    Strings, booleans and ints (nearly every attribute of a profile) are mapped here directly: TypeSerializer
    tries each DynamoDB type in turn for every value, which cost more than cleaning the row.
    """
    return {name: _attribute(value) for name, value in item.items()}


def item_json(item: Mapping[str, Any]) -> str:
    """The JSON text of `serialize(item)`, as it goes into a request body."""
    return json.dumps(serialize(item), separators=(",", ":"))


def plain_item_json(values: Mapping[str, Any]) -> str:
    """`item_json(items.to_item(values))` in one pass: the JSON text of what a profile's plain values (floats,
    times, None) are written as.

    Strings and booleans, most of a profile, are written straight into the text (their names' prefixes made
    once): encoding the nested attribute maps with `json` cost twice as much as the rest of a write.
    """
    parts: list[str] = []
    for name, value in values.items():
        kind = type(value)
        if kind is str:
            prefix = _STRING_PREFIX.get(name) or _STRING_PREFIX.setdefault(name, f'{_quoted(name)}:{{"S":')
            parts.append(f"{prefix}{_quoted(value)}}}")
        elif kind is bool:
            prefix = _BOOL_PREFIX.get(name) or _BOOL_PREFIX.setdefault(name, f'{_quoted(name)}:{{"BOOL":')
            parts.append(f"{prefix}{'true' if value else 'false'}}}")
        elif value is not None and (converted := to_attribute(value)) is not None:
            parts.append(f"{_quoted(name)}:{json.dumps(_attribute(converted), separators=(',', ':'))}")
    return "{" + ",".join(parts) + "}"


@collector.paused()
def plain_items_json(columns: Mapping[str, Sequence[Any]]) -> list[str]:
    """`plain_item_json` of each row these columns hold (a row lacks the attributes it holds None in), made a
    column at a time.

    A column's values go into the text as they are when none needs escaping (ASCII, printable, no quote or
    backslash: most of a profile), else as json escapes them; each row's text is then one call of a writer made
    for the columns (a column some rows lack gives each row its whole fragment, or nothing). Building each
    attribute's fragment row by row cost more than the rest of a write: 2.1 µs a profile, against under 1 here.
    """
    rows = len(next(iter(columns.values()), ()))
    slots = [slot for name, column in columns.items() if (slot := _slot(name, column)) is not None]
    if not rows or not slots:
        return ["{}"] * rows
    texts = list(map(_writer(tuple(slot.around for slot in slots)), *(slot.texts for slot in slots)))
    if slots[0].around is None:  # the writer began with a partial column's comma, or with nothing at all
        return ["{}" if text == "}" else "{" + text[1:] for text in texts]
    return texts


@dataclass(frozen=True, slots=True)
class _Slot:
    # The text before and after a value's text (its name, its type's wrapping); None for a column some rows lack,
    # whose texts are then each row's whole fragment with its comma, or "".
    around: tuple[str, str] | None
    texts: list[str]


def _slot(name: str, column: Sequence[Any]) -> _Slot | None:
    quoted = _quoted(name)
    try:
        joined = "".join(column)  # raises unless every value is a string: the common case in one pass
    except TypeError:
        pass
    else:
        return _Slot((f'{quoted}:{{"S":"', '"}'), _unescaped(list(column), joined))
    values = list(column)
    types = set(map(type, values))
    kept: list[bool] | None = None
    if not types <= {str, bool}:  # None, and what to_attribute leaves out (NaN, infinities), mean absent
        kept = (
            [value is not None for value in values]
            if types <= {str, bool, type(None)}
            else [to_attribute(value) is not None for value in values]
        )
        if not any(kept):
            return None
        if all(kept):
            kept = None
        else:
            values = [value for value, keep in zip(values, kept, strict=True) if keep]
            types = set(map(type, values))
    if types == {str}:
        before, after, texts = f'{quoted}:{{"S":"', '"}', _unescaped(values, "".join(values))
    elif types == {bool}:
        before, after, texts = f'{quoted}:{{"BOOL":', "}", [_BOOL_TEXT[value] for value in values]
    else:
        before, after = f"{quoted}:", ""
        texts = [json.dumps(_attribute(to_attribute(value)), separators=(",", ":")) for value in values]
    if kept is None:
        return _Slot((before, after), texts)
    fragments = np.full(len(kept), "", dtype=object)
    fragments[np.array(kept, dtype=bool)] = [f",{before}{text}{after}" for text in texts]
    return _Slot(None, fragments.tolist())


def _unescaped(values: list[str], joined: str) -> list[str]:
    """The strings as they are inside JSON's quotes: themselves when none needs escaping."""
    if joined.isascii() and not joined.encode().translate(None, _AS_THEY_ARE):
        return values
    # json's own escapes; between two of them '","' is only ever the separator (a quote inside is escaped).
    return json.dumps(values, separators=(",", ":"))[2:-2].split('","') if values else []


_BOOL_TEXT = {True: "true", False: "false"}
# The bytes JSON writes as they are: printable ASCII but the quote and the backslash (translate deletes them, so
# a string of only these leaves nothing).
_AS_THEY_ARE = bytes(byte for byte in range(0x20, 0x7F) if byte not in b'"\\')


@lru_cache(maxsize=256)
def _writer(arounds: tuple[tuple[str, str] | None, ...]) -> Callable[..., str]:
    """`lambda v0, v1, ...: "{" + before0 + v0 + after0 + "," + before1 + v1 + after1 ... + "}"` as one f-string
    (a None around: the value is its own fragment, comma included).

    Safe to compile: the constant text is written as repr() literals with braces doubled, the values are
    parameters; one f-string builds the row in one step where joining its pieces took three times as long.
    """
    pieces = [] if arounds[0] is None else ["{"]
    for index, around in enumerate(arounds):
        value = f"{{v{index}}}"
        pieces += [value] if around is None else [("," if index else "") + around[0], value, around[1]]
    pieces.append("}")
    # Adjacent f-string literals: the values as replacement fields, the rest as literal text.
    literal = " ".join(
        "f" + (f"'{piece}'" if piece.startswith("{v") else repr(_braces_doubled(piece))) for piece in pieces
    )
    parameters = ", ".join(f"v{index}" for index in range(len(arounds)))
    made: Callable[..., str] = eval(f"lambda {parameters}: {literal}")  # noqa: S307
    return made


def _braces_doubled(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


# Attribute names seen by plain_item_json with their encoded prefixes; a table's names are few.
_STRING_PREFIX: dict[str, str] = {}
_BOOL_PREFIX: dict[str, str] = {}


def _attribute(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int and -_INT_LIMIT < value < _INT_LIMIT:
        return {"N": str(value)}
    return cast("dict[str, Any]", _serializer.serialize(value))


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values (numbers as Decimal), as boto3's TypeDeserializer makes them; strings and booleans directly."""
    return {name: _value(attribute) for name, attribute in item.items()}


def _value(attribute: Any) -> Any:
    if len(attribute) == 1:
        if "S" in attribute:
            return attribute["S"]
        if "BOOL" in attribute:
            return attribute["BOOL"]
    return _deserializer.deserialize(attribute)


@dataclass(frozen=True, slots=True)
class StringKeys:
    """Keys of one string attribute, `[{name: value} for value in values]`, written as text in one join."""

    name: str
    values: Sequence[str]

    def __len__(self) -> int:
        return len(self.values)


def keys_json(keys: Sequence[Mapping[str, Any]] | StringKeys) -> str:
    """The JSON text of `[serialize(key) for key in keys]` without its brackets; a key of one string attribute
    (nearly every key here) is written straight into the text, for a fifth of what serialize and json cost."""
    if isinstance(keys, StringKeys):
        if not keys.values:
            return ""
        # The values inside their quotes, as they are when json escapes none of them (ids: nearly always).
        values = list(keys.values)
        texts = _unescaped(values, "".join(values))
        opening, closing = f'{{{_quoted(keys.name)}:{{"S":"', '"}}'
        return opening + f"{closing},{opening}".join(texts) + closing
    return ",".join(_key_json(key) for key in keys)


def _key_json(key: Mapping[str, Any]) -> str:
    if len(key) == 1:
        ((name, value),) = key.items()
        if type(value) is str:
            return f'{{{_quoted(name)}:{{"S":{_quoted(value)}}}}}'
    return item_json(key)


def get_items(
    request: Mapping[str, Sequence[Mapping[str, Any]] | StringKeys],
    *,
    projections: Mapping[str, Sequence[str]] | None = None,
    action: str,
    consistent: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """Items (plain values, numbers as Decimal) by table for one BatchGetItem request of at most 100 keys.

    `request` maps table names to their keys (plain values, or StringKeys); `projections` optionally names the
    attributes to read per table. Reads are strongly consistent unless `consistent` is false (half the read units).

    Raises:
        TransientError: keys stayed unprocessed after every retry, or DynamoDB throttled.
        PermanentError: DynamoDB refused the request.
    """
    entries = []
    for table, keys in request.items():
        if not keys:
            continue
        entry: dict[str, Any] = {"ConsistentRead": consistent}
        names = (projections or {}).get(table)
        if names:
            entry["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(names)))
            entry["ExpressionAttributeNames"] = {f"#p{i}": name for i, name in enumerate(names)}
        # The keys written as text, spliced in before the entry's other members (see keys_json).
        entries.append(f'{_quoted(table)}:{{"Keys":[{keys_json(keys)}],{json.dumps(entry, separators=(",", ":"))[1:]}')
    found: dict[str, list[dict[str, Any]]] = {table: [] for table in request}
    pending: str | dict[str, Any] = f'{{"RequestItems":{{{",".join(entries)}}}}}' if entries else {}
    for attempt in range(_MAX_ROUNDS):
        if not pending:
            return found
        response = dynamodb_wire.call("BatchGetItem", pending, action=action)
        for table, items in response.get("Responses", {}).items():
            found.setdefault(table, []).extend(deserialize(item) for item in items)
        unprocessed = response.get("UnprocessedKeys") or {}
        pending = {"RequestItems": unprocessed} if unprocessed else {}
        if pending:
            _backoff(attempt)
    if pending:
        raise TransientError(f"{action}: keys left unprocessed")
    return found


def items_by_key(
    table_name: str, key_name: str, key_values: Sequence[str], *, action: str, workers: int = 1
) -> dict[str, dict[str, Any]]:
    """The stored items (plain values, numbers as Decimal) of these single-attribute keys, by key value: strongly
    consistent BatchGetItem calls of 100 keys, `workers` of them at once. Missing keys are left out.

    Raises:
        TransientError: keys stayed unprocessed after every retry, or DynamoDB throttled.
        PermanentError: DynamoDB refused the request.
    """

    def read(group: Sequence[str]) -> list[dict[str, Any]]:
        return get_items({table_name: StringKeys(key_name, group)}, action=action)[table_name]

    pages = _each(read, list(_chunks(list(dict.fromkeys(key_values)), GET_LIMIT)), workers)
    return {str(item[key_name]): item for page in pages for item in page}


def put_items(
    table_name: str,
    items: Sequence[Mapping[str, Any]],
    *,
    action: str,
    workers: int = 1,
    encode: Callable[[Mapping[str, Any]], str] = item_json,
) -> None:
    """Write whole items (plain values) with BatchWriteItem, 25 a call (keys must be unique), `workers` calls at once.

    `encode` makes an item's attribute map as JSON text: `item_json` for DynamoDB's own values, `plain_item_json`
    for plain ones.

    Raises:
        TransientError: items stayed unprocessed after every retry, or DynamoDB throttled.
        PermanentError: DynamoDB refused an item.
    """
    _write(table_name, list(_chunks(items, WRITE_LIMIT)), encode, action=action, workers=workers)


def put_item_texts(table_name: str, texts: Sequence[str], *, action: str, workers: int = 1) -> None:
    """`put_items` of items already written as JSON text (`plain_items_json`, `item_json`)."""
    _write(table_name, list(_chunks(texts, WRITE_LIMIT)), None, action=action, workers=workers)


def _write[T](
    table_name: str, chunks: Sequence[Sequence[T]], encode: Callable[[T], str] | None, *, action: str, workers: int
) -> None:
    """Each chunk as one BatchWriteItem call (its items encoded by `encode` in the call's thread; None: they are
    texts), retrying what DynamoDB leaves unprocessed."""
    table_json = _quoted(table_name)

    def write(chunk: Sequence[T]) -> None:
        with collector.paused():
            texts = chunk if encode is None else list(map(encode, chunk))
            # Each item inside its PutRequest by one join (a chunk is never empty).
            puts = _PUT_BETWEEN.join(cast("Sequence[str]", texts))
        body: str | dict[str, Any] = f'{{"RequestItems":{{{table_json}:[{_PUT_OPEN}{puts}{_PUT_CLOSE}]}}}}'
        for attempt in range(_MAX_ROUNDS):
            response = dynamodb_wire.call("BatchWriteItem", body, action=action)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
            body = {"RequestItems": pending}
            _backoff(attempt)
        raise TransientError(f"{action}: items left unprocessed")

    _each(write, chunks, workers)


_PUT_OPEN = '{"PutRequest":{"Item":'
_PUT_CLOSE = "}}"
_PUT_BETWEEN = _PUT_CLOSE + "," + _PUT_OPEN


def _each[T, R](call: Callable[[T], R], calls: Sequence[T], workers: int) -> list[R]:
    """`call` of each argument in order, `workers` at once (the wire's connection pool is thread-safe)."""
    if workers <= 1 or len(calls) <= 1:
        return [call(argument) for argument in calls]
    with ThreadPoolExecutor(max_workers=min(workers, len(calls))) as pool:
        return list(pool.map(call, calls))


def _chunks[T](items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_SCAN_DONE = object()


def scan_segments(
    table_name: str,
    *,
    segments: int,
    workers: int,
    action: str,
    only: Sequence[int] | None = None,
    **scan_arguments: Any,
) -> Iterator[list[dict[str, Any]]]:
    """The pages (plain values) of a Scan split into `segments` parallel segments, `workers` of them read at once.

    `only` names the segments to read (all by default): DynamoDB puts each item in exactly one segment of a given
    total, so callers reading disjoint `only` lists of one total read each item once between them.
    Pages arrive in no particular order; every item arrives exactly once. `scan_arguments` are Scan's own
    (FilterExpression, ProjectionExpression, ExpressionAttributeNames, ExpressionAttributeValues as plain values).
    Each segment follows its own LastEvaluatedKey; a few pages wait in a bounded queue, so a slow reader holds
    back the segments instead of piling pages up in memory.

    Raises:
        TransientError: DynamoDB throttled or timed out after the client's retries.
        PermanentError: DynamoDB rejected the scan.
    """
    client = clients.client("dynamodb")
    if "ExpressionAttributeValues" in scan_arguments:
        scan_arguments["ExpressionAttributeValues"] = serialize(scan_arguments["ExpressionAttributeValues"])
    pages: queue.Queue[Any] = queue.Queue(maxsize=2 * workers)
    stopped = threading.Event()

    def read(segment: int) -> None:
        arguments: dict[str, Any] = {"TableName": table_name, **scan_arguments}
        if segments > 1:
            arguments.update(Segment=segment, TotalSegments=segments)
        try:
            while not stopped.is_set():
                response = client.scan(**arguments)
                pages.put([deserialize(item) for item in response.get("Items", [])])
                if "LastEvaluatedKey" not in response:
                    break
                arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            error = clients.translate(exc, action)
            error.__cause__ = exc
            pages.put(error)
        except Exception as exc:  # handed to the reader, who raises it: no segment is lost silently
            pages.put(exc)
        finally:
            pages.put(_SCAN_DONE)

    # The low-level client is thread-safe (boto3's Table resource is not); one thread per segment being read.
    numbers = list(range(segments) if only is None else only)
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(numbers))), thread_name_prefix="scan")
    futures: list[Future[None]] = [pool.submit(read, segment) for segment in numbers]
    finished = 0
    try:
        while finished < len(numbers):
            entry = pages.get()
            if entry is _SCAN_DONE:
                finished += 1
            elif isinstance(entry, Exception):
                raise entry
            else:
                yield entry
    finally:
        # A reader that stopped early (or an error) must not leave segments blocked on a full queue.
        stopped.set()
        for future in futures:
            future.cancel()
        while not all(future.done() for future in futures):
            try:
                pages.get(timeout=0.1)
            except queue.Empty:
                continue
        pool.shutdown()
