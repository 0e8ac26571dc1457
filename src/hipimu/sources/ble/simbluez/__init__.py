"""A simulated BlueZ whose sensors run the real firmware core, for tests and benches.

* ``template.py`` -- the python-dbusmock template (run by Debian's python3):
  org.bluez with an adapter and hipimu sensor boards; its docstring documents
  the simulation and the ``org.hipimu.SimControl`` test controls.
* ``firmware_core.py`` -- the stdlib-only ctypes binding of
  ``firmware/build/libhipimu_core.so``.
* ``harness.py`` -- :class:`~hipimu.sources.ble.simbluez.harness.SimulatedBlueZ`:
  a private bus, the mock on it, sensors scripted from the simulated subject.

Nothing is imported here: ``from hipimu.sources.ble.simbluez.harness import SimulatedBlueZ``.
"""
