"""`python -m gateway` runs the `wicket` command line."""

from gateway.cli import main

main()
