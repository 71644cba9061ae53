// Placeholder; the SCSIWire owner replaces this file.
