/// Why an ``AIOFileBlockDevice`` could not be opened (raised at start, before
/// any initiator sees the LUN).
public struct AIOFileBlockDeviceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, in words an operator can act on.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let raw: UInt8
        /// Block size is not 512 or 4096, the block count is zero, or the size overflows.
        public static let invalidGeometry = Code(raw: 1)
        /// The directory that should hold the backing file does not exist.
        public static let directoryMissing = Code(raw: 2)
        /// The backing file does not exist and may not be created (read-only LUN).
        public static let fileMissing = Code(raw: 3)
        /// open(2) or sizing was refused (EACCES/EPERM).
        public static let permissionDenied = Code(raw: 4)
        /// The path names a directory, device or something else than a regular file.
        public static let notARegularFile = Code(raw: 5)
        /// The existing file is larger than the LUN and `allowLargerFile` is off.
        public static let fileTooLarge = Code(raw: 6)
        /// The existing file is smaller than the LUN and may not be extended (read-only).
        public static let fileTooSmall = Code(raw: 7)
        /// Another process (or device) holds the file's lock.
        public static let inUse = Code(raw: 8)
        /// `directIO = .on` but the file system refuses O_DIRECT or its alignment.
        public static let directIOUnsupported = Code(raw: 9)
        /// ftruncate/fallocate failed.
        public static let sizingFailed = Code(raw: 10)
        /// No space to allocate a thick (non-thin) file.
        public static let noSpace = Code(raw: 11)
        /// io_setup, eventfd or a thread could not be created.
        public static let resourcesUnavailable = Code(raw: 12)
        /// The file system is mounted read-only.
        public static let readOnlyFileSystem = Code(raw: 13)
        /// Any other open(2) failure; see `errno`.
        public static let openFailed = Code(raw: 14)

        public var description: String {
            switch raw {
            case 1: "invalid geometry"
            case 2: "directory missing"
            case 3: "file missing"
            case 4: "permission denied"
            case 5: "not a regular file"
            case 6: "existing file larger than the LUN"
            case 7: "existing file smaller than the LUN"
            case 8: "file in use"
            case 9: "O_DIRECT unsupported"
            case 10: "sizing failed"
            case 11: "no space"
            case 12: "resources unavailable"
            case 13: "read-only file system"
            case 14: "open failed"
            default: "unknown(\(raw))"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// The backing file.
    public var path: String
    /// The `errno` behind the failure, when there is one.
    public var errno: Int32
    /// Free text for the operator.
    public var detail: String

    public init(_ code: Code, path: String, errno: Int32 = 0, detail: String = "") {
        self.code = code
        self.path = path
        self.errno = errno
        self.detail = detail
    }

    public var description: String {
        var text = "cannot open backing file \(path): \(code)"
        if errno != 0 { text += " (errno \(errno))" }
        if !detail.isEmpty { text += ": \(detail)" }
        return text
    }
}
