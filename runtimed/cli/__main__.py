"""`python -m runtimed.cli`: what the service code and tests run as `runtimed`."""

from . import main

raise SystemExit(main())
