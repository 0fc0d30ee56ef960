"""The command-line interface: parse arguments, call the API, render the result."""
