import TesseraCLI
