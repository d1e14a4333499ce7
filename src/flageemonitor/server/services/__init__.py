"""The service layer: every read and write of the control plane's state, one module per resource.

The admin CLI calls these functions, and so will an HTTP admin API: one implementation of each
operation, with its validation and its audit entry. Each function takes the session it works
in; the caller commits.
"""
