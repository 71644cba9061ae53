// Placeholder; the ISCSISession owner replaces this file.
