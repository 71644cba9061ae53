# Sourced by the Tools scripts: puts the Swift toolchain on PATH.
if ! command -v swift >/dev/null && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH=/opt/swift/usr/bin:$PATH
fi
