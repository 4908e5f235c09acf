"""`python -m actbert ...` is the `actbert` command."""
import sys

from actbert.cli.main import main

sys.exit(main())
