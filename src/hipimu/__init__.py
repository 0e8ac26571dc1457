"""hipimu: hip and pelvis kinematics from wearable IMUs.

Layers (imports only ever point downwards):

* ``hipimu.core``    pure computation: conventions, sample model, protocol,
                     orientation, calibration, kinematics, analysis.
                     Arrays in, arrays out; no bleak, no Qt, no files.
* ``hipimu.sources`` async sources of sample blocks: replay, simulate (ble later).
* ``hipimu.storage`` the recording file format, CSV import and export.
* ``hipimu.apps``    the command line (and later the dashboard).
"""

__version__ = "0.1.0"
