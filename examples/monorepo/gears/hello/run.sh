#!/bin/sh
# The smallest possible gear: greet, and leave a file in the output directory.
# $FLYWHEEL is set by the fw-python layer; override it to run locally.
set -eu
base="${FLYWHEEL:-/flywheel/v0}"
mkdir -p "$base/output"
echo "Hello from the hello gear!"
echo "Hello from the hello gear!" > "$base/output/hello.txt"
