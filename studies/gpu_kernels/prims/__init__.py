"""Study-only Triton kernels for the hyperbolic-native primitives (logarithmic number system,
lookup tables, Lorentz-model distances): measured in ``primitives.py``, not part of the
package (the verdicts in the README say why none is used by the model)."""
