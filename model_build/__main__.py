"""Command line: python -m model_build {generate,train,score,demo-model,publish} ...; see --help."""

import sys
from pathlib import Path

# The domain package lives in the Lambda layer's directory; make it importable when run from a checkout.
_LAYER = Path(__file__).resolve().parent.parent / "layers" / "common" / "python"
if _LAYER.is_dir() and str(_LAYER) not in sys.path:
    sys.path.insert(0, str(_LAYER))

from model_build.cli import main  # noqa: E402 - needs the layer path above

if __name__ == "__main__":
    sys.exit(main())
