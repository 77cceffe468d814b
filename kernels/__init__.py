"""Triton GPU kernels for the hot RSGN ops (imports only torch and triton); none yet."""
