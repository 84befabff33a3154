"""The ``axe-deploy`` command line (``main``) and its graph commands (``annotate``, ``check``)."""
