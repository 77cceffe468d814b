from rsgn.backends.triton.target import TritonBackend  # noqa: F401
