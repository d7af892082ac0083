"""Apps the command line tests serve with ``hyperpy serve tests.apps.MODULE:ATTR``."""
