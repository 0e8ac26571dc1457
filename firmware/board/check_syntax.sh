#!/bin/sh
# Syntax and type check of the board layer without the Arduino toolchain:
# g++ -fsyntax-only against the stub headers in stubs/ (declarations only,
# copied from the Adafruit/Seeed core's signatures), plus the core compiled
# as C with the same warnings as the Arduino build. This is NOT a build: the
# real check is `arduino-cli compile` (README.md).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
"$here/sync_core.sh"
sketch="$here/hipimu_sensor"
CXX=${CXX:-g++}
CC=${CC:-gcc}
flags="-std=gnu++11 -fsyntax-only -Wall -Wextra -Werror -fno-exceptions -fno-rtti -I$here/stubs -I$sketch"
status=0
for f in "$sketch"/*.cpp; do
    echo "== $(basename "$f")"
    $CXX $flags "$f" || status=1
done
echo "== hipimu_sensor.ino"
# the Arduino builder adds '#include <Arduino.h>' and prototypes; the sketch
# already includes Arduino.h and declares before use, so plain C++ will do
$CXX $flags -x c++ "$sketch/hipimu_sensor.ino" || status=1
for f in "$sketch"/src/hipimu_core/*.c; do
    [ -e "$f" ] || continue
    echo "== core: $(basename "$f")"
    $CC -std=gnu11 -fsyntax-only -Wall -Wextra -Werror -I"$sketch/src/hipimu_core" "$f" || status=1
done
[ $status -eq 0 ] && echo "check_syntax: OK" || echo "check_syntax: FAILED"
exit $status
