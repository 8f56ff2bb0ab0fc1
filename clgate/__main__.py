"""`python -m clgate`: the same command as `clgate`."""

from clgate.audit.cli import main

main()
