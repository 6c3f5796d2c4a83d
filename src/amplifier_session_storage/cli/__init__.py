"""The ``sessctl`` command line (see :mod:`.main`)."""
