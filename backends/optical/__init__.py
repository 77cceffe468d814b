from rsgn.backends.optical.target import OpticalBackend  # noqa: F401
