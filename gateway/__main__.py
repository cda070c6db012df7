"""`python -m gateway` runs the `wicket` command line."""

from gateway.cli.main import main

main()
