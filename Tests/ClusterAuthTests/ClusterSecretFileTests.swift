import ClusterAuth
import Foundation
import Testing

@Suite struct ClusterSecretFileTests {
    static func directory() -> String {
        let path = NSTemporaryDirectory() + "tessera-secret-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func aCreatedSecretLoadsBackAndIsOwnerOnly() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/cluster.secret"
        let made = try ClusterSecret.create(at: path)
        #expect(try ClusterSecret.load(path: path) == made)
        let mode = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        // Never over an existing file.
        #expect(throws: ClusterSecretError.self) { try ClusterSecret.create(at: path) }
    }

    @Test func aFileOthersCanReadIsRefused() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/loose.secret"
        _ = FileManager.default.createFile(atPath: path, contents: Data("0123456789abcdef0123\n".utf8))
        chmod(path, 0o644)
        do {
            _ = try ClusterSecret.load(path: path)
            Issue.record("loaded a world-readable secret")
        } catch {
            #expect(error.description.contains("chmod 600"))
        }
        chmod(path, 0o600)
        #expect(throws: Never.self) { try ClusterSecret.load(path: path) }
    }

    @Test func aMissingOrShortFileSaysSo() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            _ = try ClusterSecret.load(path: dir + "/none")
            Issue.record("loaded a missing file")
        } catch { #expect(error.description.contains("cannot read")) }
        let short = dir + "/short"
        _ = FileManager.default.createFile(atPath: short, contents: Data("tiny\n".utf8), attributes: [.posixPermissions: 0o600])
        do {
            _ = try ClusterSecret.load(path: short)
            Issue.record("loaded a short secret")
        } catch { #expect(error.description.contains("shorter than 16")) }
    }
}
