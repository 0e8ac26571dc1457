"""BLE sensor boards as a sample source (bleak). Work in progress (issue 5)."""
