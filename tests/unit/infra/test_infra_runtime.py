"""The local stack's Lambda workers: each function's code runs in the function's own environment."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from infra.runtime import base_sys_path

HANDLER = """
import os

GREETING_AT_IMPORT = os.environ.get("GREETING", "<unset>")


def lambda_handler(event, context):
    return {"at_import": GREETING_AT_IMPORT, "now": os.environ.get("GREETING", "<unset>")}
"""

# A parent whose main module imports the function's code before it starts the worker, as `python -m infra.demo`
# once did with the cadence package: spawn imports the main module again in the worker, before its sandbox is set.
PARENT = """
import json
import sys

sys.path.insert(0, {code_dir!r})
import greeter  # noqa: E402,F401 - imported before the worker starts, on purpose

from infra.runtime import FunctionSpec, FunctionWorker  # noqa: E402

if __name__ == "__main__":
    spec = FunctionSpec(
        logical_id="GreeterFunction",
        function_name="greeter",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:greeter",
        handler="greeter.lambda_handler",
        code_dir={code_dir!r},
        layer_dirs=(),
        environment={{"GREETING": "from the function"}},
        timeout_s=30,
        memory_mb=128,
        log_path={log_path!r},
    )
    worker = FunctionWorker(spec, {base_path!r})
    worker.start()
    try:
        result = worker.invoke("{{}}", "request-1")
    finally:
        worker.stop()
    print(json.dumps({{"payload": result.payload, "error": result.error}}))
"""


def test_a_handler_imported_by_the_parent_first_is_imported_again_in_the_functions_environment(
    tmp_path: Path,
) -> None:
    code_dir = tmp_path / "greeter"
    code_dir.mkdir()
    (code_dir / "greeter.py").write_text(textwrap.dedent(HANDLER))
    parent = tmp_path / "parent.py"
    parent.write_text(
        PARENT.format(code_dir=str(code_dir), log_path=str(tmp_path / "greeter.log"), base_path=base_sys_path())
    )
    project = Path(__file__).resolve().parents[3]

    finished = subprocess.run(
        [sys.executable, str(parent)],
        cwd=project,
        env={"PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    outcome = json.loads(finished.stdout.strip().splitlines()[-1])
    assert outcome["error"] is None
    assert outcome["payload"] == {"at_import": "from the function", "now": "from the function"}
