#!/bin/sh
# Copy the portable core (firmware/core) into the sketch, where the Arduino
# build compiles it: hipimu_sensor/src/hipimu_core/ (git-ignored). Run it
# before every build; the core has one home, firmware/core.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
core="$here/../core"
dest="$here/hipimu_sensor/src/hipimu_core"
rm -rf "$dest"
mkdir -p "$dest"
cp "$core/include/hipimu_core.h" "$core"/src/*.h "$dest/"
found=0
for f in "$core"/src/*.c; do
    [ -e "$f" ] || continue
    cp "$f" "$dest/"
    found=$((found + 1))
done
echo "sync_core: headers and $found source file(s) -> ${dest#$here/}"
