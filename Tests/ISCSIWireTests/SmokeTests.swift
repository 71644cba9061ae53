import NIOCore
import Testing

@testable import ISCSIWire

@Suite struct SmokeTests {
    @Test func nopOutRoundTrip() throws {
        var buffer = ByteBuffer()
        let pdu = ISCSIPDU.nopOut(NOPOutPDU(initiatorTaskTag: 7, cmdSN: 1))
        ISCSIFrameEncoder().encode(pdu, into: &buffer)
        var decoder = ISCSIFrameDecoder()
        #expect(try decoder.decode(&buffer) == .pdu(pdu))
    }
}
