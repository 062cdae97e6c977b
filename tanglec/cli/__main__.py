"""`python -m tanglec.cli`: the same as the `tanglec` command."""
from . import main

main()
