// Placeholder; the ISCSITargetServer owner replaces this file.
