"""Demo and test infrastructure: a loopback fleet of real sshd endpoints (`fleet`)."""
