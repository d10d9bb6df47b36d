"""What the routes ask for: calls prepared and answered, generation, models, status."""
