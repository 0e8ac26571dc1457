"""Sources of sample blocks behind one async interface (see :mod:`hipimu.sources.base`)."""
