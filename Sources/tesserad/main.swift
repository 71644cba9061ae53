// tesserad: the Tessera node daemon. Everything lives in TesseraNode;
// TesseradCommand only parses the command line.
await TesseradCommand.launch()
