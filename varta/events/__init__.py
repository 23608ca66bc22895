"""System alarms (storage) now; analytics events later."""
