"""``keel doctor``: executable troubleshooting checks (see :mod:`keel.doctor.registry`)."""
