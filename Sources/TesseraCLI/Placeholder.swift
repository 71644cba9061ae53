// Placeholder; the TesseraCLI owner replaces this file.
