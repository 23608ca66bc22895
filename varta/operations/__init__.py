"""Running Varta in a city's IT department: installer checks, backup and restore."""
