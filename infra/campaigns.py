"""`python -m infra.campaigns`: the older spelling of `cadence campaign ...` (see cadence_cli), kept for scripts.

    python -m infra.campaigns validate FILE
    python -m infra.campaigns deploy FILE --stack-name cadence-dev [--endpoint-url URL]
    python -m infra.campaigns run-now CAMPAIGN_ID --stack-name cadence-dev [--endpoint-url URL]

infra/demo.py and the integration tests import load_definition, deploy, run_now and stack_outputs from here.
"""

import sys

from cadence_cli import main as cli
from cadence_cli.stack import deploy, load_definition, run_now, stack_outputs

__all__ = ["deploy", "load_definition", "main", "run_now", "stack_outputs"]


def main(argv: list[str] | None = None) -> int:
    return cli.main(["campaign", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
