"""Pure protocol logic, one module per specification. Nothing here performs I/O or imports ``web``, ``storage``
or ``vault`` (a test guards this)."""
