"""The virtual subject (wrapper written by the integrator; physics in _body/_scenarios)."""
