"""What branchyard asks of the operating system: running tools, processes and who
listens where, port leases (main's included), filesystem abilities, browsers."""
