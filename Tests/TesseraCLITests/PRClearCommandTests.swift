import AdminAPI
import ArgumentParser
import Testing

@testable import TesseraCLI

@Suite struct PRClearCommandTests {
    static let cleared = ReservationStatus(
        target: "iqn.2026-11.dev.tessera:cluster", lun: 0, generation: 4, aptpl: false, registrations: [],
        reservation: nil, spc2Reservation: nil)

    @Test func withoutYesItIsAUsageErrorThatSaysWhatToAdd() {
        do {
            _ = try TesseraCommand.parseAsRoot(["pr", "clear", "0"])
            Issue.record("parsed without --yes")
        } catch {
            #expect(TesseraCommand.status(for: error) == 2)
            #expect(TesseraCommand.fullMessage(for: error).contains("--yes"))
        }
    }

    @Test func withYesItSendsOneDeleteWithARequestID() async throws {
        let transport = ChangeTransport(["127.0.0.1:8081": { _, _ in json(Self.cleared) }])
        let result = try await AccessCommandTests.run(["pr", "clear", "0", "--yes"], transport: transport)
        #expect(result.status == 0)
        let sent = transport.sent.withLock { $0 }
        #expect(sent.map(\.method) == ["DELETE"])
        #expect(sent.first?.path == "/v1/luns/0/reservations")
        #expect(sent.first?.headers["Idempotency-Key"]?.isEmpty == false)
        #expect(result.out.contains("generation 4") || result.out.contains("4"))
    }
}
