import BlockStorage
import ISCSISession
import NIOCore
import SCSITarget
import Testing

@testable import ISCSITargetServer

@Suite("SCSI layer ↔ session machine mapping")
struct ResponseMappingTests {
    @Test(arguments: [
        (TaskManagementResult.functionComplete, TaskManagementResponseCode.functionComplete),
        (.taskDoesNotExist, .taskDoesNotExist), (.lunDoesNotExist, .lunDoesNotExist),
        (.functionNotSupported, .functionNotSupported), (.functionRejected, .functionRejected),
    ])
    func taskManagementResults(result: TaskManagementResult, code: TaskManagementResponseCode) {
        #expect(SCSIBridge.responseCode(result) == code)
    }

    @Test func dataInIsCopiedOnceAndCutAtDataInLength() {
        let buffer = IOBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8])
        let result = SCSIBridge.result(
            of: SCSIResponse(status: .good, dataIn: buffer, dataInLength: 5), allocator: ByteBufferAllocator())
        #expect(result.dataIn == ByteBuffer(bytes: [1, 2, 3, 4, 5]))
        #expect(result.status == 0)
    }
}
