from rsgn.backends.neuromorphic.target import NeuromorphicBackend  # noqa: F401
