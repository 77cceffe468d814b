from rsgn.backends.optical_aware.target import OpticalAwareBackend  # noqa: F401
