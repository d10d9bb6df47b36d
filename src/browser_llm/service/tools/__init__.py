"""Tool calling: the generic JSON format, the Hermes template format, and which a model gets."""
