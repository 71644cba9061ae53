import Testing

@testable import TesseraCLI

/// `tessera target create|delete`, `tessera lun create|resize|delete`: sizes and confirmations.
@Suite struct CatalogCommandTests {
    @Test(arguments: [
        ("1048576", UInt64(1 << 20)), ("64M", UInt64(64 << 20)), ("64MiB", UInt64(64 << 20)), ("64mb", UInt64(64 << 20)),
        ("1G", UInt64(1 << 30)), ("2T", UInt64(2) << 40), ("512K", UInt64(512 << 10)),
    ])
    func sizesParse(text: String, bytes: UInt64) {
        #expect(parseByteCount(text) == bytes)
    }

    @Test(arguments: ["", "0", "G", "1.5G", "-1M", "1X", "99999999999999999999", "16777216P"])
    func badSizesDoNot(text: String) {
        #expect(parseByteCount(text) == nil, "\(text)")
    }

    @Test func deletesNeedYes() throws {
        #expect(throws: (any Error).self) { try LUNCommand.Delete.parse(["0"]).validate() }
        #expect(throws: (any Error).self) { try TargetCommand.Delete.parse(["iqn.t:a"]).validate() }
        try LUNCommand.Delete.parse(["0", "--yes"]).validate()
        #expect(throws: (any Error).self) { try LUNCommand.Resize.parse(["0", "lots"]).validate() }
        let create = try LUNCommand.Create.parse(["iqn.t:a", "1G", "--replicas", "3", "--sub-unit-size", "64M"])
        try create.validate()
        #expect(create.replicas == 3 && create.subUnitSize == "64M" && create.blockSize == 512)
    }

    @Test func aShrinkNeedsForceAndYes() throws {
        try LUNCommand.Resize.parse(["0", "128M"]).validate()
        #expect(throws: (any Error).self) { try LUNCommand.Resize.parse(["0", "64M", "--force"]).validate() }
        #expect(throws: (any Error).self) { try LUNCommand.Resize.parse(["0", "64M", "--yes"]).validate() }
        let forced = try LUNCommand.Resize.parse(["0", "64M", "--force", "--yes", "--target", "iqn.t:a"])
        try forced.validate()
        #expect(forced.force && forced.yes && forced.target == "iqn.t:a")
    }

    @Test func anAliasIsOneLine() throws {
        try TargetCommand.SetAlias.parse(["iqn.t:a", "database disks"]).validate()
        try TargetCommand.SetAlias.parse(["iqn.t:a", ""]).validate()
        #expect(throws: (any Error).self) { try TargetCommand.SetAlias.parse(["iqn.t:a", "two\nlines"]).validate() }
        #expect(throws: (any Error).self) { try TargetCommand.SetPortalGroup.parse(["iqn.t:a", "0"]).validate() }
        #expect(try TargetCommand.SetPortalGroup.parse(["iqn.t:a", "3"]).tag == 3)
    }
}
