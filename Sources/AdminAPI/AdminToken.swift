/// The admin API's bearer token. It is compared in constant time and never
/// printed: `description` is a placeholder, so a token interpolated into a
/// log line by mistake shows nothing.
public struct AdminToken: Sendable, Hashable, CustomStringConvertible {
    private let bytes: [UInt8]

    /// Nil for an empty token (or one of only whitespace): it would protect nothing.
    public init?(_ text: String) {
        let trimmed = text.trimmingWhitespace
        guard !trimmed.isEmpty else { return nil }
        bytes = Array(trimmed.utf8)
    }

    public var description: String { "<admin token>" }

    /// Whether an `Authorization` header value is `Bearer <this token>`
    /// (RFC 6750 §2.1; the scheme is case-insensitive, RFC 7235 §2.1).
    /// The comparison takes the same time wherever the first difference is.
    public func accepts(authorization header: String?) -> Bool {
        guard let header else { return false }
        let trimmed = header.trimmingWhitespace
        let scheme = "bearer "
        guard trimmed.count > scheme.count, trimmed.prefix(scheme.count).lowercased() == scheme else { return false }
        let presented = Array(trimmed.dropFirst(scheme.count).trimmingWhitespace.utf8)
        return Self.constantTimeEqual(presented, bytes)
    }

    /// Equal lengths and bytes, with every byte of `a` looked at whatever the
    /// inputs; only the length of the expected value can leak.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count) | UInt8(a.count == b.count ? 0 : 1)
        for index in a.indices {
            difference |= a[index] ^ (b.isEmpty ? 0 : b[index % b.count])
        }
        return difference == 0
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces, tabs and line ends.
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
