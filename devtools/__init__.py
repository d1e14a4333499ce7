"""Development tools, never installed with the product: the sshd persona fleet (`fleet`), the
private container engine and registry (`oci`), process helpers and the demo (`demo`)."""
