// Placeholder; the AIOBlockStorage owner replaces this file.
