import ClusterModel
import Foundation
import Synchronization
import Testing
import TesseraTestKit

@testable import DistributedLUN

struct ActivityLogStoreTests {
    @Test func theFileKeepsTheExtentsAndRefusesAnythingElse() async throws {
        let path = NSTemporaryDirectory() + "tessera-al-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).al"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = ActivityLogFile(path: path)
        #expect(file.load(extentBlocks: 8192) == nil, "no file")
        try await file.save([3, 1, 4, 1_000_000_007], extentBlocks: 8192)
        #expect(file.load(extentBlocks: 8192) == [3, 1, 4, 1_000_000_007])
        #expect(file.load(extentBlocks: 1024) == nil, "another extent size")
        try await file.save([], extentBlocks: 8192)
        #expect(file.load(extentBlocks: 8192) == [], "shorter: the file is cut to its record")
        var bytes = ActivityLogFile.encode([5, 6], extentBlocks: 8)
        #expect(ActivityLogFile.decode(bytes, extentBlocks: 8) == [5, 6])
        bytes[22] ^= 1
        #expect(ActivityLogFile.decode(bytes, extentBlocks: 8) == nil, "a torn or damaged record")
        #expect(ActivityLogFile.decode(Array(bytes.prefix(10)), extentBlocks: 8) == nil)
    }

    @Test func writesToNewExtentsWaitForOneSaveTogether() async {
        let store = MemoryActivityLogStore()
        let writer = ActivityLogWriter(store: store, capacity: 64, extentBlocks: 100)
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<32 { group.addTask { await writer.begin(UInt64(i) * 100..<UInt64(i) * 100 + 1) } }
            var all = true
            for await ok in group { all = all && ok }
            return all
        }
        #expect(admitted)
        #expect(Set(store.extents ?? []) == Set(0..<32), "every admitted extent is in the record")
        #expect(store.saves < 32, "saves are shared: \(store.saves)")
        let before = store.saves
        #expect(await writer.begin(0..<1))
        #expect(store.saves == before, "a logged extent needs no save")
    }

    @Test func aRecordThatCannotBeWrittenFailsTheWrite() async {
        let store = MemoryActivityLogStore()
        store.setFailing(true)
        let writer = ActivityLogWriter(store: store, capacity: 4, extentBlocks: 100)
        #expect(await writer.begin(0..<1) == false)
    }
}
