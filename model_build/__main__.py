"""Command line: python -m model_build {generate,train,score,demo-model,intent,publish} ...; see --help.

``cadence`` is importable through the .pth file `make venv` puts in the virtual environment.
"""

import sys

from model_build.cli import main

if __name__ == "__main__":
    sys.exit(main())
