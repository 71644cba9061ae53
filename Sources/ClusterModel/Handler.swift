/// A closure to keep behind a lock. A function type stored directly as a
/// `Mutex` value is converted to and from its generic form on every
/// `withLock` (the value is `inout`), and each write-back wraps it in two
/// more conversion thunks: a closure read per I/O ends up thousands of
/// thunks deep (seen as a QD1 read taking 8 ms). A reference to this box
/// is what the lock holds instead.
public final class Handler<Function: Sendable>: Sendable {
    /// The closure.
    public let call: Function

    public init(_ call: Function) { self.call = call }
}
