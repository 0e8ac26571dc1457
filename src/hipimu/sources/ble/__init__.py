"""BLE sensor boards as a sample source (bleak).

* :class:`~hipimu.sources.ble.source.BleSource` -- scan, connect, configure and
  stream boards through the common async source interface.
* :mod:`~hipimu.sources.ble.roles` -- sensor references and the remembered
  device id -> role mapping.
* :mod:`~hipimu.sources.ble.assign` -- identify a board by shaking it.
* :mod:`~hipimu.sources.ble.stats` -- live per-sensor link statistics.
* :mod:`~hipimu.sources.ble.simbackend` -- a simulated bleak backend (demo
  mode, no hardware); :mod:`~hipimu.sources.ble.simbluez` -- a simulated BlueZ
  on a private D-Bus for tests through bleak's real BlueZ backend.

Importing this package does not import bleak; connecting does.
"""
