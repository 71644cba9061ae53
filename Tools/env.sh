# Sourced by the Tools scripts: puts the Swift toolchain on PATH.
# TESSERA_BIN_DIR, when set, is where the binaries already are (the test
# command builds once, in release, and every stage uses that build).
if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH=/opt/swift/usr/bin:$PATH
fi
