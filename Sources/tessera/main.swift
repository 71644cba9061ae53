// tessera: the Tessera management CLI; the commands live in TesseraCLI.
import TesseraCLI

await TesseraCommand.launch()
