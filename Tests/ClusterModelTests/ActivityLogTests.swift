import ClusterModel
import Testing

struct ActivityLogTests {
    @Test func aNewExtentNeedsANewerRecordAndALoggedOneDoesNot() {
        var log = ActivityLog(capacity: 4, extentBlocks: 100)
        #expect(log.begin(0..<10) == 1)
        #expect(log.begin(50..<60) == 1, "the same extent: the record that holds it")
        #expect(log.begin(150..<260) == 3, "two new extents, 1 and 2")
        #expect(log.extents == [0, 1, 2])
        #expect(log.blockRanges == [0..<100, 100..<200, 200..<300])
        #expect(log.begin(0..<0) == 0)
    }

    @Test func evictionTakesTheLeastRecentlyUsedExtentWithNothingInFlight() {
        var log = ActivityLog(capacity: 2, extentBlocks: 10)
        _ = log.begin(0..<1)  // extent 0, in flight
        _ = log.begin(10..<11)  // extent 1
        log.end(10..<11)
        _ = log.begin(20..<21)  // extent 2: 1 goes (0 is in flight)
        #expect(log.extents == [0, 2])
        _ = log.begin(30..<31)  // extent 3: both in flight, the log grows
        #expect(log.extents == [0, 2, 3])
        log.end(0..<1)
        #expect(log.extents == [2, 3], "over capacity: the finished one goes at once")
        // An evicted extent coming back needs a newer record.
        #expect(log.begin(10..<11) == log.generation)
    }

    @Test func recoveredExtentsArePinnedUntilReleased() {
        var log = ActivityLog(capacity: 1, extentBlocks: 10, recovered: [7, 9, 7])
        #expect(log.extents == [7, 9])
        #expect(log.begin(70..<71) == 0, "recovered extents are durable already")
        log.end(70..<71)
        _ = log.begin(0..<1)
        #expect(log.extents == [9, 7, 0], "pinned extents stay over capacity; a write in flight too")
        log.end(0..<1)
        #expect(log.extents == [9, 7], "the unpinned one goes once its write ended")
        log.unpin()
        #expect(log.extents == [7], "then the least recently used")
    }
}
