#!/bin/sh
# Build the board layer + core + fake hardware for the PC, run the scripted
# sessions (6D and 9D) and check their output with hipimu's own decoder.
# Needs g++ and the project's Python (.venv). Not a substitute for hardware.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
board="$here/.."
repo="$board/../.."
"$board/sync_core.sh" >/dev/null
out=${TMPDIR:-/tmp}/hipimu_board_sim
mkdir -p "$out"
sketch="$board/hipimu_sensor"
flags="-std=gnu++11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -I$board/stubs -I$sketch -I$here"
objs=""
for f in "$sketch"/src/hipimu_core/*.c; do
    o="$out/$(basename "$f" .c).o"
    gcc -std=c99 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -I"$sketch/src/hipimu_core" -c "$f" -o "$o"
    objs="$objs $o"
done
g++ $flags -x c++ "$sketch/hipimu_sensor.ino" "$sketch"/*.cpp "$here/fake_hw.cpp" "$here/sim_main.cpp" \
    -x none $objs -o "$out/sim"
py="$repo/.venv/bin/python"
[ -x "$py" ] || py=python3
status=0
for mode in 6d 9d; do
    "$out/sim" "$mode" > "$out/$mode.log"
    "$py" "$here/check_sim.py" "$mode" "$out/$mode.log" || status=1
done
exit $status
