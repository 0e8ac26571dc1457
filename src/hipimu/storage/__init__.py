"""Storage: the recording file format, CSV import and export."""
