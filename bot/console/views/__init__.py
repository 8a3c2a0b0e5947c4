"""Console pages, one module per area of the clinic's work."""
