"""Lambda-like execution environments: one spawned worker process per function.

Like a Lambda container, a worker has its own interpreter (multiprocessing *spawn*, nothing inherited from the
router's memory), its own environment (exactly the deployed function's variables plus what the Lambda runtime sets),
``sys.path`` = function folder, then layer folders, then the standard library and the venv's site-packages (which
stand in for the layers' built dependencies), and its working directory in the function folder. It imports the
handler once (the cold start) and serves one invocation at a time. A handler exception is returned as a function
error and the worker lives on; a timeout or a crash kills the worker and the next invocation starts a new one.

For chaos tests only, ``FunctionSpec.faults`` (``WorkerFaults``) makes a worker kill itself at random moments: right
after an AWS API call returns, with probability ``kill_share`` per call, it ends with ``os._exit`` (no ``finally``,
no flush, as SIGKILL or a Lambda sandbox lost mid-invocation would). Between two API calls is every moment that
matters to the ledger: after a claim, after SES accepted a call and before it is recorded, after a settle and before
the run's counter. The choice is seeded (``seed`` and the worker's spawn number), so a failing run can be replayed.

This module only imports the standard library: the worker processes import it, and stay light.
"""

from __future__ import annotations

import contextlib
import decimal
import importlib
import json
import multiprocessing
import os
import random
import resource
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

_INIT_TIMEOUT_S: Final = 120.0  # importing pandas/onnxruntime on a busy two-core machine can take a while
_TIMEOUT_GRACE_S: Final = 2.0
_STOP_TIMEOUT_S: Final = 3.0
_STOP_BUSY_WAIT_S: Final = 0.5  # how long a stop waits for a running invocation before killing it


@dataclass(frozen=True)
class WorkerFaults:
    """Test-only faults of a function's workers (see the module docstring); the default injects none."""

    kill_share: float = 0.0  # probability, per AWS API call, that the worker dies right after the call returns
    seed: int = 0


@dataclass(frozen=True)
class FunctionSpec:
    """Everything a worker needs to run one function."""

    logical_id: str
    function_name: str
    function_arn: str
    handler: str  # "module.function", e.g. "app.lambda_handler"
    code_dir: str
    layer_dirs: tuple[str, ...]
    environment: dict[str, str]
    timeout_s: int
    memory_mb: int
    log_path: str
    faults: WorkerFaults = field(default_factory=WorkerFaults)


@dataclass(frozen=True)
class InvocationResult:
    """The outcome of one invocation, as Lambda reports it."""

    request_id: str
    payload_json: str  # the handler's return value as JSON, or the error document
    error: dict[str, Any] | None  # {"errorMessage", "errorType", "stackTrace"} for a function error
    duration_ms: float
    started_at: float = field(default=0.0)  # time.time() when the worker got the event
    api_calls: dict[str, int] = field(default_factory=dict)  # AWS API calls the invocation made, by service.Operation

    @property
    def ok(self) -> bool:
        """Whether the function returned without an error."""
        return self.error is None

    @property
    def payload(self) -> Any:
        """The handler's return value (or the error document), decoded."""
        return json.loads(self.payload_json) if self.payload_json else None


class LambdaContext:
    """The context object handlers receive (the attributes of Lambda's Python runtime)."""

    def __init__(self, spec: FunctionSpec, request_id: str, deadline_ms: int) -> None:
        self.function_name = spec.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.function_arn
        self.memory_limit_in_mb = str(spec.memory_mb)  # a string, as on Lambda
        self.aws_request_id = request_id
        self.log_group_name = spec.environment.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = spec.environment.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


class FunctionWorker:
    """The parent's handle on one function's worker process; ``invoke`` is thread-safe and serial."""

    def __init__(self, spec: FunctionSpec, base_path: list[str], console: Callable[[str], None] | None = None) -> None:
        self.spec = spec
        self._base_path = base_path
        self._console = console
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._ready = False
        self._tail: _LogTail | None = None
        self._closed = False
        self._spawns = 0  # seeds a worker's faults: each respawned worker draws its own moments

    def start(self) -> None:
        """Spawn the worker; it imports the handler in the background."""
        with self._lock:
            self._spawn()
        if self._console is not None and self._tail is None:
            self._tail = _LogTail(Path(self.spec.log_path), f"[{self.spec.logical_id}] ", self._console)
            self._tail.start()

    def invoke(self, event_json: str, request_id: str) -> InvocationResult:
        """Run one invocation, waiting for a cold start if there is one."""
        with self._lock:
            if self._closed:
                return _failure(request_id, "Runtime.Shutdown", "the local stack is stopping", time.time())
            if self._process is None or not self._process.is_alive():
                self._spawn()
            connection = self._connection
            assert connection is not None  # noqa: S101 - set by _spawn
            started = time.time()
            try:
                if not self._ready:
                    if not connection.poll(_INIT_TIMEOUT_S):
                        self._kill()
                        return _failure(request_id, "Runtime.InitTimeout", "initialization did not finish", started)
                    connection.recv()  # ("ready", init error or None): init errors are reported per invocation
                    self._ready = True
                deadline_ms = int((time.time() + self.spec.timeout_s) * 1000)
                connection.send(("invoke", request_id, event_json, deadline_ms))
                if not connection.poll(self.spec.timeout_s + _TIMEOUT_GRACE_S):
                    self._kill()
                    message = f"{request_id} Task timed out after {self.spec.timeout_s:.2f} seconds"
                    return _failure(request_id, "Sandbox.Timedout", message, started)
                _, _, payload_json, error, duration_ms, handler_started, api_calls = connection.recv()
            except (EOFError, OSError, ValueError):
                exit_code = self._process.exitcode if self._process is not None else None
                self._kill()
                message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {exit_code}"
                return _failure(request_id, "Runtime.ExitError", message, started)
            return InvocationResult(request_id, payload_json, error, duration_ms, handler_started, api_calls)

    def stop(self) -> None:
        """Stop the worker (politely, then by force); later invocations fail instead of starting a new one."""
        self._closed = True
        # An invocation still running holds the lock; a stop must not wait for a 15-minute handler, so it kills it.
        acquired = self._lock.acquire(timeout=_STOP_BUSY_WAIT_S)
        try:
            process, connection = self._process, self._connection
            if acquired and connection is not None and process is not None and process.is_alive():
                # A worker still importing its handler would only be stopped after its cold start: kill it now.
                with contextlib.suppress(OSError, ValueError):
                    if self._ready or connection.poll(0):
                        connection.send(("stop",))
                        process.join(_STOP_TIMEOUT_S)
            self._kill()
        finally:
            if acquired:
                self._lock.release()
        if self._tail is not None:
            self._tail.stop()
            self._tail = None

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=worker_main,
            args=(self.spec, child, self._base_path, self._spawns),
            name=f"lambda-{self.spec.logical_id}",
            daemon=True,
        )
        # Ctrl-C signals the whole process group; the router stops its workers itself. An ignored SIGINT survives
        # exec and Python keeps it ignored, so a worker still starting up is not interrupted either (worker_main
        # ignores it too, for workers respawned from other threads, where signal.signal cannot be called).
        on_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if on_main_thread else None
        try:
            process.start()
        finally:
            if on_main_thread:
                signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
        child.close()
        self._spawns += 1
        self._process, self._connection, self._ready = process, parent, False

    def _kill(self) -> None:
        process, connection = self._process, self._connection
        self._process, self._connection, self._ready = None, None, False
        if connection is not None:
            connection.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(_STOP_TIMEOUT_S)
            process.close()


def base_sys_path() -> list[str]:
    """The standard library and site-packages entries of this interpreter's sys.path (no project folders)."""
    prefixes = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()}
    return [
        entry
        for entry in sys.path
        if entry and any(Path(entry).resolve().is_relative_to(prefix) for prefix in prefixes)
    ]


def _failure(request_id: str, error_type: str, message: str, started: float) -> InvocationResult:
    error = {"errorMessage": message, "errorType": error_type, "stackTrace": []}
    return InvocationResult(request_id, json.dumps(error), error, (time.time() - started) * 1000, started)


class _LogTail(threading.Thread):
    """Copies new lines of a worker's log file to the console (--verbose)."""

    def __init__(self, path: Path, prefix: str, write: Callable[[str], None]) -> None:
        super().__init__(name=f"tail-{path.stem}", daemon=True)
        self._path = path
        self._prefix = prefix
        self._write = write
        self._stopped = threading.Event()
        self._offset = path.stat().st_size if path.exists() else 0

    def run(self) -> None:
        pending = b""
        while not self._stopped.wait(0.1):
            if not self._path.exists():
                continue
            with self._path.open("rb") as stream:
                stream.seek(self._offset)
                chunk = stream.read()
            self._offset += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._write(self._prefix + line.decode("utf-8", "replace"))

    def stop(self) -> None:
        self._stopped.set()
        self.join(1.0)


# ---------- the worker process ----------


def worker_main(spec: FunctionSpec, connection: Connection, base_path: list[str], spawn: int = 0) -> None:
    """Entry point of a worker process: set up the sandbox, import the handler, serve invocations until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the router stops us
    _redirect_output(Path(spec.log_path))
    os.environ.clear()
    os.environ.update(spec.environment)
    time.tzset()  # TZ is part of the environment
    layer_paths = [
        str(path)
        for layer in spec.layer_dirs
        for path in (Path(layer) / "python", Path(layer) / "python" / "lib" / "python3.13" / "site-packages")
        if path.is_dir()
    ]
    sys.path[:] = [spec.code_dir, *layer_paths, *base_path]
    _forget_preloaded([spec.code_dir, *(path for path in layer_paths if Path(path).name == "python")])
    os.chdir(spec.code_dir)

    api_calls = _count_api_calls(_killer(spec.faults, spawn))
    init_started = time.time()
    handler, init_error = _import_handler(spec.handler)
    init_ms: float | None = (time.time() - init_started) * 1000
    connection.send(("ready", init_error))
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return  # the router went away
        if message[0] == "stop":
            return
        _, request_id, event_json, deadline_ms = message
        if handler is None:
            importlib.invalidate_caches()  # the code may have been written since the last attempt
            init_started = time.time()
            handler, init_error = _import_handler(spec.handler)
            init_ms = (time.time() - init_started) * 1000
        started = time.time()
        calls_before = api_calls.copy()
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        if handler is None:
            payload_json, error = json.dumps(init_error), init_error
        else:
            payload_json, error = _run(handler, event_json, LambdaContext(spec, request_id, deadline_ms))
        duration_ms = (time.time() - started) * 1000
        report = _report_line(request_id, duration_ms, spec.memory_mb, init_ms)
        init_ms = None
        print(f"END RequestId: {request_id}\n{report}", flush=True)
        sys.stderr.flush()
        calls = {operation: count - calls_before[operation] for operation, count in api_calls.items()}
        calls = {operation: count for operation, count in calls.items() if count}
        connection.send(("result", request_id, payload_json, error, duration_ms, started, calls))


def _forget_preloaded(function_paths: list[str]) -> None:
    """Drop every module the function's code or layers' ``python/`` provide, imported before the sandbox was set.

    Spawn imports the parent's ``__main__`` module in the worker before ``worker_main`` runs; if that module imports
    (say) ``cadence``, the handler would get modules initialised in the parent's environment, not the function's:
    Powertools' ``Metrics()`` built without ``POWERTOOLS_METRICS_NAMESPACE`` fails every invocation. Lambda's cold
    start imports them fresh, so the worker does too. Built dependencies (``site-packages``) stay: they stand in for
    the venv's, and extension modules cannot be imported twice.
    """
    provided = {
        entry.stem if entry.suffix == ".py" else entry.name
        for folder in function_paths
        for entry in Path(folder).iterdir()
        if entry.suffix == ".py" or (entry.is_dir() and entry.name.isidentifier())
    }
    for name in [name for name in sys.modules if name.partition(".")[0] in provided]:
        del sys.modules[name]


def _killer(faults: WorkerFaults, spawn: int) -> Callable[[], None] | None:
    """What the worker calls after each AWS API call: dies there now and then (chaos tests), or None."""
    if faults.kill_share <= 0:
        return None
    draw = random.Random(f"{faults.seed}:{spawn}").random  # noqa: S311 - chaos, not cryptography

    def maybe_die() -> None:
        if draw() < faults.kill_share:
            print("[CHAOS] worker killed after an API call (WorkerFaults.kill_share)", flush=True)
            os._exit(137)  # as SIGKILL: no cleanup, no finally, no answer to the router

    return maybe_die


def _count_api_calls(after_call: Callable[[], None] | None = None) -> Counter[str]:
    """Count every AWS API call made in this worker, by "service.Operation", for the benchmarks.

    Wrapping botocore's one entry point counts the calls of every client the handler builds, whatever
    library built it; botocore's own retries of a call are not counted again. `after_call` runs after each call
    (returned or raised): the chaos tests' worker kills.
    """
    from botocore.client import BaseClient  # noqa: PLC0415 - imported in the worker, after its sys.path is set

    counts: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counting(client: BaseClient, operation_name: str, api_params: Any) -> Any:
        counts[f"{client.meta.service_model.service_name}.{operation_name}"] += 1
        try:
            return original(client, operation_name, api_params)
        finally:
            if after_call is not None:
                after_call()

    BaseClient._make_api_call = counting  # type: ignore[method-assign]
    return counts


def _redirect_output(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)


def _import_handler(handler: str) -> tuple[Callable[[Any, Any], Any] | None, dict[str, Any] | None]:
    module_name, _, function_name = handler.rpartition(".")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        return None, _init_failure("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}")
    except Exception as exc:
        message = f"Unable to import module '{module_name}': {exc}"
        return None, _init_failure("Runtime.ImportModuleError", message)
    function = getattr(module, function_name, None)
    if not callable(function):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return None, _init_failure("Runtime.HandlerNotFound", message)
    return function, None


def _init_failure(error_type: str, message: str) -> dict[str, Any]:
    print(f"[ERROR] {error_type}: {message}", file=sys.stderr, flush=True)
    traceback.print_exc()
    return {"errorMessage": message, "errorType": error_type, "stackTrace": []}


def _run(handler: Callable[[Any, Any], Any], event_json: str, context: LambdaContext) -> tuple[str, Any]:
    try:
        result = handler(json.loads(event_json), context)
    except Exception as exc:
        error = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
        }
        print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exc()
        return json.dumps(error), error
    try:
        return json.dumps(result, default=_json_default), None
    except (TypeError, ValueError) as exc:
        error = {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError"}
        return json.dumps(error), error


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):  # Lambda's Python runtime marshals Decimal as a number
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _peak_memory_mb() -> int:
    # ru_maxrss would count the parent's memory at fork time; VmHWM starts afresh at exec.
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _report_line(request_id: str, duration_ms: float, memory_mb: int, init_ms: float | None) -> str:
    used_mb = _peak_memory_mb()
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {int(duration_ms) + 1} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {used_mb} MB",
    ]
    if init_ms is not None:
        fields.append(f"Init Duration: {init_ms:.2f} ms")
    return "\t".join(fields)
