"""``python -m host``: the same CLI as the ``host`` script (Debian's DNS tool is also called host)."""

from host.cli import main

raise SystemExit(main())
