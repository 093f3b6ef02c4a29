"""``python -m services``: the headless command line (see services/cli/main.py)."""

from services.cli.main import main

raise SystemExit(main())
