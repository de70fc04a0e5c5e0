"""`python -m idp.cli`."""

from idp.cli import main

raise SystemExit(main())
