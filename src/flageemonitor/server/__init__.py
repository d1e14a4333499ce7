"""The control plane: tokens, networks, versioned configs and the bootstrap installers."""
