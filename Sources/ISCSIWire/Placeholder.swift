// Placeholder; the ISCSIWire owner replaces this file.
