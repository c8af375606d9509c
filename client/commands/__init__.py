"""Subcommands of the `xoda` command line, one module each."""
