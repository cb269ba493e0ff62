"""The trace viewer's parts: ``model`` folds a run directory into a typed RunTrace (reading the
log only through ``run_log.read_events``), ``chain`` lines up delta -> edit -> audit, ``view``
renders it for the terminal and ``html`` as a static page."""
