"""The generic kinds of run: train, fit, grid, forecast (each registers its record)."""
