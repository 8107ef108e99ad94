import sys

from cadence_cli.main import main

sys.exit(main())
