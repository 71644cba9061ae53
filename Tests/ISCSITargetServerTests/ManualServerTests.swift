import BlockStorage
import Foundation
import ISCSISession
import NIOCore
import SCSITarget
import Testing

@testable import ISCSITargetServer

@Suite struct ManualServer {
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TESSERA_MANUAL_PORT"] != nil))
    func serve() async throws {
        let port = Int(ProcessInfo.processInfo.environment["TESSERA_MANUAL_PORT"]!)!
        let seconds = Int(ProcessInfo.processInfo.environment["TESSERA_MANUAL_SECONDS"] ?? "120")!
        let memory = MemoryBlockDevice(geometry: BlockGeometry(blockSize: 512, blockCount: 204800))
        let unit = LogicalUnit(configuration: LogicalUnitConfiguration(serial: "manual1", identifier: 1), device: memory)
        let device = SCSITargetDevice(logicalUnits: [0: unit])
        let name = "iqn.2026-01.test:disk"
        let server = ISCSIServer(
            configuration: ISCSIServerConfiguration(
                portals: [.init(host: "127.0.0.1", port: port, portalGroupTag: 1)],
                login: LoginConfiguration(targets: [TargetDescription(name: name)]), targets: [name: device]))
        try await server.start()
        try await Task.sleep(for: .seconds(seconds))
        await server.shutdown()
    }
}
