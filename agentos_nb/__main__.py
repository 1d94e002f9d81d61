from agentos_nb.cli import main

raise SystemExit(main())
