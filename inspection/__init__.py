"""Human-in-the-loop scratch inspection for smartphones."""

__version__ = "0.1.0"
