"""The dashboard: ``hipimu live`` and ``hipimu replay`` in one PySide6 + pyqtgraph window.

Layers, each importable on its own:

* :mod:`.model` -- what is shown (ring buffers, current values, peak hold),
  plain data, no Qt;
* :mod:`.controller` -- the actions the window may ask for;
* :mod:`.engine` (live: BLE, recording, angles in threads of their own) and
  :mod:`.replay` (a recorded session processed by the pipeline, a playhead);
* :mod:`.window` and :mod:`.widgets` -- Qt, drawing the model only;
* :mod:`.app` -- the QApplication, screenshots, the command line's entry.
"""
