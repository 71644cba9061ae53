// Placeholder; the TesseraNode owner replaces this file.
