"""The local AWS stack: moto's server with a SAM template deployed into it and its event sources routed to handlers.

    python -m infra.local_stack --port 4566 [--parameter-overrides K=V ...] [--verbose]

prints one line when the stack is ready and serves until Ctrl-C. From Python::

    with LocalStack(port=0) as stack:
        stack.client("s3").put_object(Bucket=stack.outputs["DataBucketName"], Key="incoming/x.csv", Body=b"...")
        stack.wait_idle()

Heavy imports (moto, boto3, the SAM translator) happen in ``LocalStack.start``: worker processes are spawned, and
spawn re-imports the parent's ``__main__`` module (this one under ``make local``) in every worker.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from infra.clients import Clients
    from infra.function_urls import FunctionUrls
    from infra.moto_patches import InProcessMoto
    from infra.router import InvocationRecord, Router, SqsSource
    from infra.runtime import FunctionSpec, InvocationResult, WorkerFaults
    from infra.sam_deploy import Deployment

log = logging.getLogger("infra.local_stack")

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_WORK_DIR: Final = PROJECT_ROOT / "build" / "local-stack"
DEFAULT_REGION: Final = "us-east-1"


class LocalStackError(RuntimeError):
    """The local stack could not start."""


class LocalStack:
    """A running local stack; use as a context manager (or call ``start``/``close``)."""

    def __init__(
        self,
        port: int = 0,
        template: str | Path = "template.yaml",
        parameters: dict[str, str] | None = None,
        *,
        stack_name: str | None = None,
        region: str = DEFAULT_REGION,
        host: str = "127.0.0.1",
        work_dir: str | Path | None = None,
        verbose: bool = False,
        async_retry_delays: Sequence[float] = (1.0, 2.0),
        paused_functions: Collection[str] = (),
        beside: LocalStack | None = None,
        environment_overrides: Mapping[str, Mapping[str, str]] | None = None,
        worker_faults: Mapping[str, WorkerFaults] | None = None,
    ) -> None:
        """``paused_functions``: logical ids whose queues are not polled (messages wait), e.g. to time one stage.

        ``environment_overrides`` (by logical id) replace some of a function's deployed variables in its workers,
        and ``worker_faults`` (by logical id, ``infra.runtime.WorkerFaults``) kill its workers at random moments:
        both for chaos tests (e.g. a short dispatch lease), never for ``make local``.

        ``beside``: a running local stack whose endpoint (one moto, one account) this stack is deployed into, as a
        second brand's stack is deployed beside the first in one AWS account; it needs its own stack name (and
        ``work_dir``), and closing it leaves the other running.
        """
        self._port = port
        self._template = _find_template(Path(template))
        self._requested_parameters = dict(parameters or {})
        self._stack_name = stack_name
        self._region = region
        self._host = host
        self._work_dir = Path(work_dir) if work_dir is not None else DEFAULT_WORK_DIR
        self._verbose = verbose
        self._retry_delays = tuple(async_retry_delays)
        self._paused = frozenset(paused_functions)
        self._beside = beside
        self._environment_overrides = {name: dict(values) for name, values in (environment_overrides or {}).items()}
        self._worker_faults = dict(worker_faults or {})
        self._server: Any = None
        self._clients: Clients | None = None
        self._moto: InProcessMoto | None = None
        self._deployment: Deployment | None = None
        self._router: Router | None = None
        self._function_urls: FunctionUrls | None = None
        self._endpoint_url = ""
        self.startup_seconds = 0.0

    # ---------- lifecycle ----------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> Self:
        """Start moto, deploy the template, start the workers and the router."""
        # Imported here, not at module level: see the module docstring.
        from infra import moto_patches, sesv2_shim  # noqa: PLC0415
        from infra.clients import Clients  # noqa: PLC0415
        from infra.function_urls import FunctionUrls  # noqa: PLC0415
        from infra.router import Router  # noqa: PLC0415
        from infra.runtime import base_sys_path  # noqa: PLC0415
        from infra.sam_deploy import Deployer  # noqa: PLC0415

        started = time.monotonic()
        _quiet_moto(self._verbose)
        if self._beside is not None:
            if not self._beside.endpoint_url:
                raise LocalStackError("the stack to deploy beside is not running")
            self._endpoint_url = self._beside.endpoint_url
        else:
            sesv2_shim.install()  # before the server answers its first SESv2 request (see infra.sesv2_shim)
            if self._port:
                _check_port_free(self._host, self._port)
            self._server = _server_with_serialized_dynamodb(self._host, self._port)
            self._server.start()
            host, port = self._server.get_host_and_port()
            self._endpoint_url = f"http://{host}:{port}"
        try:
            self._clients = Clients(self._endpoint_url, self._region)
            parameters = self._parameters()
            stack_name = self._stack_name or f"cadence-{parameters.get('Stage', 'local')}"
            from moto.core import DEFAULT_ACCOUNT_ID  # noqa: PLC0415

            self._moto = moto_patches.InProcessMoto(DEFAULT_ACCOUNT_ID, self._region)
            self._function_urls = FunctionUrls(self._host)
            self._deployment = Deployer(self._clients, self._moto, stack_name, self._function_urls).deploy(
                self._template, parameters
            )
            functions = self._function_specs(self._deployment)
            console = _console_writer() if self._verbose else None
            self._router = Router(
                self._clients,
                functions,
                base_sys_path(),
                retry_delays=self._retry_delays,
                console=console,
            )
            moto_patches.register(self._router)
            routed_arns = {spec.function_arn for spec in functions.values()}
            for queue in self._moto.detach_event_source_mappings(routed_arns):
                log.debug("moto's own consumer of %s detached; the router polls it", queue)
            sources = self._sqs_sources(self._deployment, routed_arns)
            self._router.start([source for source in sources if source.function not in self._paused])
            self._function_urls.serve(self._router)
        except BaseException:
            self.close()
            raise
        self.startup_seconds = time.monotonic() - started
        log.info("local stack %s ready in %.2fs", self._deployment.stack_name, self.startup_seconds)
        return self

    def close(self) -> None:
        """Stop the router and workers, then the server; safe to call twice."""
        from infra import moto_patches  # noqa: PLC0415 - see the module docstring

        if self._function_urls is not None:
            self._function_urls.close()
            self._function_urls = None
        if self._router is not None:
            moto_patches.unregister(self._router)
            self._router.stop()
            self._router = None
        if self._server is not None:
            self._server.stop()
            # ThreadedMotoServer.stop shuts the server down but leaves its socket open; close it so the port is free.
            server = getattr(self._server, "_server", None)
            if server is not None:
                server.server_close()
            self._server = None

    # ---------- the API other code uses ----------

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self._endpoint_url

    @property
    def outputs(self) -> dict[str, str]:
        """The stack's Outputs (DataBucketName, ...)."""
        return dict(self._deployed().outputs)

    @property
    def stack_name(self) -> str:
        """The CloudFormation stack's name."""
        return self._deployed().stack_name

    @property
    def deployment(self) -> Deployment:
        """The deployed stack: translated template, parameters, physical ids."""
        return self._deployed()

    def physical_id(self, logical_id: str) -> str:
        """The physical name, id or URL of a resource of the template."""
        return self._deployed().physical_id(logical_id)

    def client(self, service: str) -> Any:
        """A new boto3 client pointed at the stack, with fake credentials."""
        if self._clients is None:
            raise LocalStackError("the local stack is not running")
        return self._clients.new(service)

    def client_environment(self) -> dict[str, str]:
        """Variables that point boto3's default session at the stack: ``os.environ.update(...)`` for code under test
        that builds its own clients (as the functions do with AWS_ENDPOINT_URL)."""
        from infra.clients import FAKE_ACCESS_KEY, FAKE_SECRET_KEY  # noqa: PLC0415 - see the module docstring

        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": self._region,
        }

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Block until no invocation runs or waits and every routed queue is empty (visible and in flight).

        Raises:
            TimeoutError: still busy after ``timeout`` seconds.
        """
        self._routing().wait_idle(timeout)

    def sent_emails(self) -> list[dict[str, Any]]:
        """Email moto's SES accepted (v1 and v2): dicts with type, id, source, destinations, subject, body ..."""
        return self._in_process().sent_emails()

    def sent_sms(self) -> list[dict[str, Any]]:
        """SMS moto's SNS accepted: dicts with message_id, phone_number, message."""
        return self._in_process().sent_sms()

    @property
    def ses_shim(self) -> Any:
        """The SESv2 shim (infra.sesv2_shim.SHIM): ``configure(max_send_rate=..., failure_share=...)``, and every
        bulk message it accepted, with its headers, in ``messages``."""
        from infra.sesv2_shim import SHIM  # noqa: PLC0415 - see the module docstring

        self._in_process()  # the stack must be running
        return SHIM

    def invocations(self, function_logical_id: str) -> list[InvocationRecord]:
        """Every invocation of a function so far (``len`` for the count; ``ok``/``error_type`` per record)."""
        return self._routing().invocations(function_logical_id)

    def invoke(self, function_logical_id: str, event: Any) -> InvocationResult:
        """Invoke a function synchronously, as ``aws lambda invoke`` does."""
        return self._routing().invoke(function_logical_id, event, "direct")

    def fired_schedules(self) -> list[tuple[str, str]]:
        """(schedule ARN, scheduled time ISO) of every schedule fired so far."""
        return [(arn, when.isoformat()) for arn, when in self._routing().scheduler.fired]

    def log_path(self, function_logical_id: str) -> Path:
        """The file a function's worker writes its stdout and stderr to."""
        return self._work_dir / "logs" / f"{function_logical_id}.log"

    def publish_model(self, model_dir: Path) -> str:
        """Upload a model_build directory to models/<version>/ of the data bucket; returns the version.

        The manifest goes last, as `python -m model_build publish` does: a reader never finds a manifest
        without its model.
        """
        version = str(json.loads((model_dir / "manifest.json").read_text())["version"])
        bucket = self.outputs["DataBucketName"]
        s3 = self.client("s3")
        for name in ("model.onnx", "manifest.json"):
            s3.upload_file(str(model_dir / name), bucket, f"models/{version}/{name}")
        return version

    def ready_line(self) -> str:
        """The one line ``make local`` prints when the stack is up."""
        deployment = self._deployed()

        def names(resource_type: str, transform: Any = str) -> str:
            ids = deployment.resources_of_type(resource_type)
            return ",".join(f"{lid}={transform(deployment.physical_ids[lid])}" for lid in ids) or "-"

        return (
            f"local stack ready endpoint={self.endpoint_url} stack={deployment.stack_name}"
            f" buckets={names('AWS::S3::Bucket')}"
            f" tables={names('AWS::DynamoDB::Table')}"
            f" queues={names('AWS::SQS::Queue', lambda url: url.rsplit('/', 1)[-1])}"
            f" outputs={json.dumps(deployment.outputs, separators=(',', ':'))}"
        )

    # ---------- internals ----------

    def _deployed(self) -> Deployment:
        if self._deployment is None:
            raise LocalStackError("the local stack is not running")
        return self._deployment

    def _routing(self) -> Router:
        if self._router is None:
            raise LocalStackError("the local stack is not running")
        return self._router

    def _in_process(self) -> InProcessMoto:
        if self._moto is None:
            raise LocalStackError("the local stack is not running")
        return self._moto

    def _parameters(self) -> dict[str, str]:
        from infra.sam_deploy import load_template  # noqa: PLC0415 - see the module docstring

        declared = load_template(self._template).get("Parameters", {})
        parameters = {"Stage": "local"} if "Stage" in declared else {}  # the local stack's default stage
        parameters.update(self._requested_parameters)
        return parameters

    def _function_specs(self, deployment: Deployment) -> dict[str, FunctionSpec]:
        from infra.runtime import FunctionSpec, WorkerFaults  # noqa: PLC0415 - see the module docstring

        assert self._clients is not None  # noqa: S101 - set by start
        lambda_client = self._clients("lambda")
        logs = self._work_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        specs: dict[str, FunctionSpec] = {}
        for logical_id in deployment.resources_of_type("AWS::Lambda::Function"):
            code_dir = deployment.code_dirs.get(logical_id)
            configuration = lambda_client.get_function_configuration(FunctionName=deployment.physical_id(logical_id))
            if code_dir is None or not str(configuration.get("Runtime", "")).startswith("python"):
                log.warning("%s is not routed: only Python functions with a local CodeUri run locally", logical_id)
                continue
            layer_ids = [
                item["Ref"]
                for item in deployment.template["Resources"][logical_id].get("Properties", {}).get("Layers", [])
                if isinstance(item, dict) and "Ref" in item
            ]
            name = configuration["FunctionName"]
            log_path = logs / f"{logical_id}.log"
            log_path.write_text("", encoding="utf-8")  # one run's logs per file
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                function_name=name,
                function_arn=configuration["FunctionArn"],
                handler=configuration["Handler"],
                code_dir=str(code_dir),
                layer_dirs=tuple(str(deployment.code_dirs[lid]) for lid in layer_ids if lid in deployment.code_dirs),
                environment={
                    **self._function_environment(configuration, code_dir),
                    **self._environment_overrides.get(logical_id, {}),
                },
                timeout_s=int(configuration.get("Timeout", 3)),
                memory_mb=int(configuration.get("MemorySize", 128)),
                log_path=str(log_path),
                faults=self._worker_faults.get(logical_id, WorkerFaults()),
            )
        return specs

    def _function_environment(self, configuration: dict[str, Any], code_dir: Path) -> dict[str, str]:
        """The deployed function's variables plus what Lambda's runtime sets, pointed at the local endpoint."""
        from infra.clients import FAKE_ACCESS_KEY, FAKE_SECRET_KEY  # noqa: PLC0415 - see the module docstring

        name = configuration["FunctionName"]
        environment = dict(configuration.get("Environment", {}).get("Variables", {}))
        environment.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": self._region,
                "AWS_REGION": self._region,
                "AWS_CONFIG_FILE": "/dev/null",  # a developer's ~/.aws must not redirect the functions
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration.get("MemorySize", 128)),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]local",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{configuration.get('Runtime', 'python3.13')}",
                "LAMBDA_TASK_ROOT": str(code_dir),
                "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
                "_HANDLER": configuration["Handler"],
                "TZ": ":UTC",
                "LANG": "en_US.UTF-8",
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            }
        )
        return environment

    def _sqs_sources(self, deployment: Deployment, routed_arns: set[str]) -> list[SqsSource]:
        from infra.moto_patches import unqualified  # noqa: PLC0415 - see the module docstring
        from infra.router import SqsSource  # noqa: PLC0415

        assert self._clients is not None  # noqa: S101 - set by start
        by_arn = {unqualified(arn): arn for arn in routed_arns}
        logical_ids = {
            unqualified(self._clients("lambda").get_function_configuration(FunctionName=name)["FunctionArn"]): lid
            for lid in deployment.resources_of_type("AWS::Lambda::Function")
            if (name := deployment.physical_id(lid))
        }
        sources = []
        for page in self._clients("lambda").get_paginator("list_event_source_mappings").paginate():
            for mapping in page["EventSourceMappings"]:
                function_arn = unqualified(mapping["FunctionArn"])
                if function_arn not in by_arn:
                    continue
                source_arn = mapping["EventSourceArn"]
                if source_arn.split(":")[2] != "sqs":
                    log.warning(
                        "%s: event source %s is not routed (only SQS is)", logical_ids[function_arn], source_arn
                    )
                    continue
                _, _, _, _, account, queue_name = source_arn.split(":")
                queue_url = self._clients("sqs").get_queue_url(QueueName=queue_name, QueueOwnerAWSAccountId=account)
                sources.append(
                    SqsSource(
                        function=logical_ids[function_arn],
                        queue_url=queue_url["QueueUrl"],
                        queue_arn=source_arn,
                        batch_size=int(mapping.get("BatchSize", 10)),
                        report_batch_item_failures="ReportBatchItemFailures"
                        in mapping.get("FunctionResponseTypes", []),
                    )
                )
        return sources


def _find_template(template: Path) -> Path:
    if template.is_absolute() or template.exists():
        return template.resolve()
    return (PROJECT_ROOT / template).resolve()


def _check_port_free(host: str, port: int) -> None:
    # ThreadedMotoServer.start waits forever when its server thread cannot bind, so check first.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LocalStackError(f"{host}:{port} is in use (is another local stack running?): {exc}") from exc


def _quiet_moto(verbose: bool) -> None:
    # The skipped resource types are detected and reported by infra.sam_deploy; moto's own notices are noise.
    warnings.filterwarnings("ignore", message=r"Tried to parse .* not supported by moto", category=UserWarning)
    logging.getLogger("moto").setLevel(logging.ERROR)
    # werkzeug logs every request (the pollers make one a second) unless told otherwise.
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.WARNING)


_console_lock = threading.Lock()


def _console_writer() -> Any:
    def write(line: str) -> None:
        with _console_lock:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    return write


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.local_stack``: start, print the ready line, serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m infra.local_stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4566, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--template", default="template.yaml")
    parser.add_argument("--stack-name", default=None, help="default: cadence-<Stage>")
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--work-dir", default=str(DEFAULT_WORK_DIR), help="worker logs go to WORK_DIR/logs")
    parser.add_argument("--verbose", action="store_true", help="also copy the functions' logs to the console")
    parser.add_argument(
        "--model-dir",
        type=Path,
        action="append",
        default=[],
        help="a model_build output to publish at startup (repeatable); its version becomes ModelVersion, or "
        "IntentModelVersion for a reply model, unless overridden",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "samtranslator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    overrides: dict[str, str] = {}
    for item in args.parameter_overrides:
        key, separator, value = item.partition("=")
        if not separator:
            parser.error(f"--parameter-overrides takes KEY=VALUE, not {item!r}")
        overrides[key] = value
    for model_dir in args.model_dir:
        manifest = json.loads((model_dir / "manifest.json").read_text())
        parameter = "IntentModelVersion" if manifest.get("kind") == "intent" else "ModelVersion"
        overrides.setdefault(parameter, str(manifest["version"]))

    stack = LocalStack(
        port=args.port,
        template=args.template,
        parameters=overrides,
        stack_name=args.stack_name,
        region=args.region,
        host=args.host,
        work_dir=args.work_dir,
        verbose=args.verbose,
    )
    try:
        stack.start()
        for model_dir in args.model_dir:
            log.info("published model %s from %s", stack.publish_model(model_dir), model_dir)
    except KeyboardInterrupt:
        stack.close()
        return 130
    except LocalStackError as exc:
        log.error("%s", exc)
        return 1

    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(stack.ready_line(), flush=True)
    log.info("worker logs in %s; Ctrl-C stops", stack.log_path("x").parent)
    while not stopping.wait(0.5):
        pass
    stack.close()
    log.info("stopped")
    return 0


class _SerializedDynamoDb:
    """WSGI middleware running DynamoDB requests one at a time.

    moto's DynamoDB backend is not thread-safe: a TransactWriteItems deep-copies the table while another
    request thread writes to it ("dictionary changed size during iteration", seen with ingest and score
    running at once). DynamoDB calls never block, so one lock costs little; other services (SQS long polls,
    Lambda Invoke calls that re-enter the server) stay concurrent.
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))


def _server_with_serialized_dynamodb(host: str, port: int) -> Any:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: PLC0415
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = _SerializedDynamoDb(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address=host, port=port, verbose=False)


if __name__ == "__main__":
    sys.exit(main())
