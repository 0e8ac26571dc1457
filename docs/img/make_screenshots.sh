#!/bin/sh
# The README's and docs/dashboard.md's pictures of the dashboard, made with
# --screenshot (offscreen, no display needed). Run from the repository root:
#   sh docs/img/make_screenshots.sh
set -e
H=${HIPIMU:-.venv/bin/hipimu}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cp recordings/sim_seated_rotation.hipimu "$T/seated.hipimu"
export QT_QPA_PLATFORM=offscreen DBUS_SESSION_BUS_ADDRESS=disabled:
# live, the virtual subject over the simulated radio, the simulated clinician at the controls
$H live --simulate --out-dir "$T/s" --screen sensors --screenshot docs/img/sensors.png --quit-after 12 &
$H live --simulate --manual --out-dir "$T/s" --screen session --screenshot docs/img/session.png --quit-after 3 &
wait
$H live --simulate --out-dir "$T/s" --screen calibration --screenshot docs/img/calibration.png --quit-after 24
$H live --simulate --speed 6 --out-dir "$T/s" --screen test --screenshot docs/img/live.png --quit-after 11
# replay of a bundled recording: during the second right trial, and the results
$H replay "$T/seated.hipimu" --at 68 --paused --screen test --screenshot docs/img/replay.png --quit-after 4
$H replay "$T/seated.hipimu" --paused --screen results --screenshot docs/img/results.png --quit-after 4
