"""Camera registry: the city's cameras, their streams, schedules and retention."""
