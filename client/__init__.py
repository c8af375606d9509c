"""The xoda Python client and command line."""
