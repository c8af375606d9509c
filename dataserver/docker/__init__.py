"""The worker image of the docker executor."""
